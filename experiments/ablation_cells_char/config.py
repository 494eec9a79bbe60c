"""Ablation, character level: the seven cells and a transformer at a matched
parameter count on the Python standard library's source (no download).

The quickstart recipe (1 layer, embedding 64, BPTT 64, batch 32, Adam 3e-3
with cosine decay and 50 warmup steps, clip 1, flax default init), trained for
2,000 steps instead of 600, for every cell, each cell's hidden size chosen so
that the WHOLE model has the LSTM-256's parameter count within 0.5%, with the
vocabulary of 99 characters (vocab_min_count 5; Python 3.11's stdlib -- a
different Python version has a slightly different vocabulary):

  lstm      H=256   360,483
  gru       H=298   360,757  (+0.08%)
  rnn_tanh  H=519   360,912  (+0.12%)
  mingru    H=1546  360,469  (-0.00%)
  minlstm   H=1204  360,411  (-0.02%)
  lru       H=263   360,959  (+0.13%)
  rglru     H=412   359,107  (-0.38%)

and beside them the causal transformer of experiments/lstm_vs_transformer
(2 pre-LN blocks, d_model 116, 4 heads, MLP 456, a 64-character memory of
earlier windows): 360,379 (-0.03%).

The min cells have no recurrent matrix, so with a 64-wide input and a
99-word softmax their whole budget buys width: 6x the LSTM's units.
(tests/test_linear_recurrences.py checks the match on the initialized
models.) Three seeds per arm; the table reports bits/char mean ± std.

  python -m rnnlm_jax.experiment sweep experiments/ablation_cells_char
  python -m rnnlm_jax.experiment sweep experiments/ablation_cells_char --smoke  # seconds

Hardware/time: 2 CPU cores, 2.4-7.3 min per run (the LSTM 3.9 min), about
35 min per seed for the 7 arms. Expected (2 seeds, test bits/char): GRU 1.51,
LSTM 1.55, LRU 1.58, RNN-tanh 1.61, RG-LRU 1.67, transformer 1.74, minGRU
1.89, minLSTM 1.91;
the table is in README.md.
"""

import os

from rnnlm_jax.sweep import load_module

_QUICKSTART = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'quickstart', 'config.py')

# cell -> hidden size giving the LSTM-256 parameter count (see the docstring).
HIDDEN_SIZES = {'lstm': 256, 'gru': 298, 'rnn_tanh': 519, 'mingru': 1546,
                'minlstm': 1204, 'lru': 263, 'rglru': 412}
# The transformer of experiments/lstm_vs_transformer at this budget: 2 pre-LN
# blocks of width 116, 4 heads, MLP 456, a 64-character memory; the same
# recipe as the cells.
TRANSFORMER = {
    'model.type': 'transformer',
    'model.num_layers': 2,
    'model.transformer.d_model': 116,
    'model.transformer.num_heads': 4,
    'model.transformer.mlp_dim': 456,
    'model.transformer.position': 'learned',
    'model.transformer.memory_len': 64,
    'model.transformer.max_len': 128,  # memory_len + train.seq_len (64)
}
SEEDS = (0, 1, 2)
VOCAB_SIZE = 99  # Python 3.11's stdlib at vocab_min_count 5 (for the test)


def get_config():
  c = load_module(_QUICKSTART).get_config()
  c.train.num_steps = 2000
  c.train.eval_every_steps = 500
  return c


def sweep(smoke=False):
  cells = [(cell, {'model.cell': cell,
                   'model.hidden_size': 16 if smoke else hidden})
           for cell, hidden in HIDDEN_SIZES.items()]
  return cells + [('transformer', TRANSFORMER)]
