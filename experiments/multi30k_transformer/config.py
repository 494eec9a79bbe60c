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

Not run yet: no time or result is known (experiments/multi30k_transformer/
README.md). Anchor, as cited in multi30k_gru_attention: the tutorial's
34.6-36.5 test BLEU (lower-cased tokens).
"""

from rnnlm_jax import recipes


def get_config():
  return recipes.multi30k_transformer()
