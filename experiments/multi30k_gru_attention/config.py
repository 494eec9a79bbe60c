r"""Encoder-decoder GRU with additive attention, Multi30k task 1 De->En.

bentrevett/pytorch-seq2seq's attention model (notebook 3) at its shape:
embeddings 256, bidirectional GRU encoder 512, GRU decoder 512, Bahdanau
attention, dropout 0.5, Adam 1e-3, clipping 1, batch 128, 10 epochs, words
lower-cased with min count 2 — with the source padding masked out of
attention and full teacher forcing (the tutorial feeds its own predictions
half the time). Best checkpoint by validation loss; BLEU of greedy and beam
(5, GNMT length penalty 1.0) decoding on test in results.json.

  python -m rnnlm_jax.experiment train --config experiments/multi30k_gru_attention/config.py
  python -m rnnlm_jax.experiment translate --config experiments/multi30k_gru_attention/config.py \
      --text 'Ein Mann fährt Fahrrad.'

Anchor (test_2016_flickr, lower-cased tokens, greedy): the tutorial's 28.3
BLEU (its Transformer 34.6-36.5). Hardware, time and the measured result:
experiments/multi30k_gru_attention/README.md.
"""

from rnnlm_jax import recipes


def get_config():
  return recipes.multi30k('additive')
