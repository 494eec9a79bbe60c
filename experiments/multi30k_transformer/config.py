r"""Transformer encoder-decoder, Multi30k task 1 De->En.

bentrevett/pytorch-seq2seq's Transformer (notebook 6) at its shape: 3
encoder + 3 decoder layers, d_model 256, 8 heads, MLP 512, dropout 0.1,
learned positions (max_len 100), Adam 5e-4, clipping 1, batch 128, 10
epochs — beside multi30k_gru_attention on the same data (lower-cased words
of min count 2), vocabularies, best-checkpoint rule and decoding (greedy and
beam 5, GNMT length penalty 1.0). Differences from the tutorial: pre-LN
blocks with GELU (TransformerLM's), normal(0.02) init, no sqrt(d_model)
embedding scale (rnnlm_jax/models/transformer_seq2seq.py).

  python -m rnnlm_jax.experiment train --config experiments/multi30k_transformer/config.py
  python -m rnnlm_jax.experiment translate --config experiments/multi30k_transformer/config.py \
      --text 'Ein Mann fährt Fahrrad.'

Hardware / time / result (2-vCPU CPU machine, jax 0.10.2): 10 epochs in
about 55 min alone (1 h 26 min sharing the cores); test BLEU greedy 31.87,
beam 5 34.08 lower-cased (teacher-forced ppl 6.38); the tutorial's
34.6-36.5. Details in experiments/multi30k_transformer/README.md.
"""

from rnnlm_jax import recipes


def get_config():
  return recipes.multi30k_transformer()
