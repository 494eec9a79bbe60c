"""Zaremba, Sutskever & Vinyals (2014), "medium" regularized LSTM on PTB.

2 layers x 650 (embedding 650), unrolled 35 steps, batch 20, dropout 0.5 on
the non-recurrent connections (embedding output, between the layers, before
the softmax), uniform init [-0.05, 0.05], SGD lr 1 for 6 epochs then x0.8 per
epoch, 39 epochs, gradient norm clipped at 5. (The paper's text says "decrease
by a factor of 1.2"; its released TF code, ptb_word_lm.py MediumConfig, uses
lr_decay 0.8, which is what this config does.)
Paper: valid 86.2 / test 82.7 perplexity.

  python -m rnnlm_jax.experiment train --config experiments/zaremba_medium/config.py

PTB (Mikolov's ptb.{train,valid,test}.txt) is read from data.path; the default
is <data root>/ptb ($RNNLM_JAX_DATA, else ../shared/data beside this checkout;
`python scripts/get_data.py ptb` fetches it). Elsewhere:
  --config.data.path=/path/to/ptb

Hardware/time: NOT YET RUN with this config -- no measured time or result
yet. (Expect hours on a GPU; far too slow for a CPU.) Fill in
experiments/zaremba_medium/README.md from a real run.
"""

import os

from rnnlm_jax.sweep import load_module

# The small model's config: the same data, 2-layer LSTM, SGD at lr 1 with
# step decay, clipping, loss normalization, evaluation and sampling.
_SMALL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'zaremba_small', 'config.py')

# Published numbers (Table 1 of the paper), for comparison with results.json.
PAPER = {'valid_ppl': 86.2, 'test_ppl': 82.7}


def get_config():
  """zaremba_small's config with what the paper changes for this size."""
  c = load_module(_SMALL).get_config()
  c.model.hidden_size = 650
  c.model.embed_size = 650
  c.model.dropout_embed = 0.5
  c.model.dropout = 0.5
  c.model.dropout_output = 0.5
  c.model.init_scale = 0.05

  c.train.seq_len = 35
  c.train.num_epochs = 39
  c.train.decay_start_epoch = 6
  c.train.decay_rate = 0.8
  return c
