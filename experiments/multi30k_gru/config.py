r"""Encoder-decoder GRU without attention (Cho et al. 2014), Multi30k De->En.

The same shape and training as multi30k_gru_attention, with attention='none':
the encoder's summary (final forward and backward states) is the context fed
to every decoder step and to the output layer, as bentrevett/pytorch-seq2seq
notebook 2 (its test BLEU 20.6, greedy, lower-cased tokens).

  python -m rnnlm_jax.experiment train --config experiments/multi30k_gru/config.py

Hardware, time and the measured result: experiments/multi30k_gru/README.md.
"""

from rnnlm_jax import recipes


def get_config():
  return recipes.multi30k('none')
