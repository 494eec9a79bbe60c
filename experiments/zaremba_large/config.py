"""Zaremba, Sutskever & Vinyals (2014), "large" regularized LSTM on PTB.

2 layers x 1500 (embedding 1500), unrolled 35 steps, batch 20, dropout 0.65 on
the non-recurrent connections (embedding output, between the layers, before
the softmax), uniform init [-0.04, 0.04], SGD lr 1 for 14 epochs then x1/1.15
per epoch, 55 epochs, gradient norm clipped at 10 (the paper and its TF code,
ptb_word_lm.py LargeConfig, agree).
Paper: valid 82.2 / test 78.4 perplexity.

  python -m rnnlm_jax.experiment train --config experiments/zaremba_large/config.py

PTB (Mikolov's ptb.{train,valid,test}.txt) is read from data.path; the default
is <data root>/ptb ($RNNLM_JAX_DATA, else ../shared/data beside this checkout;
`python scripts/get_data.py ptb` fetches it). Elsewhere:
  --config.data.path=/path/to/ptb

Hardware/time: NOT YET RUN with this config -- no measured time or result
yet. (Expect most of a day on one GPU; not feasible on a CPU.) Fill in
experiments/zaremba_large/README.md from a real run.
"""

import os

from rnnlm_jax.sweep import load_module

# The small model's config: the same data, 2-layer LSTM, SGD at lr 1 with
# step decay, clipping, loss normalization, evaluation and sampling.
_SMALL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'zaremba_small', 'config.py')

# Published numbers (Table 1 of the paper), for comparison with results.json.
PAPER = {'valid_ppl': 82.2, 'test_ppl': 78.4}


def get_config():
  """zaremba_small's config with what the paper changes for this size."""
  c = load_module(_SMALL).get_config()
  c.model.hidden_size = 1500
  c.model.embed_size = 1500
  c.model.dropout_embed = 0.65
  c.model.dropout = 0.65
  c.model.dropout_output = 0.65
  c.model.init_scale = 0.04

  c.train.seq_len = 35
  c.train.num_epochs = 55
  c.train.decay_start_epoch = 14
  c.train.decay_rate = 1 / 1.15
  c.train.clip_norm = 10.0
  return c
