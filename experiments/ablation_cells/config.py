"""Ablation: RNN-tanh vs GRU vs LSTM vs the linear recurrences (minGRU,
minLSTM, LRU, RG-LRU) at a matched parameter count on PTB.

The zaremba_small recipe (2 layers, embedding 200, 20-step BPTT, batch 20, SGD
lr 1 for 4 epochs then x0.5, 13 epochs, clip 5, uniform init 0.1, no dropout)
for every cell, at a lower learning rate where lr 1 fails (LEARNING_RATES),
with each cell's hidden size chosen so that the WHOLE model (embedding and
softmax included, vocabulary 10,000) has the LSTM's 4,651,600 parameters
within 0.11%:

  lstm      H=200  4,651,600
  gru       H=211  4,648,977  (-0.06%)
  rnn_tanh  H=242  4,654,576  (+0.06%)
  mingru    H=243  4,656,270  (+0.10%)
  minlstm   H=234  4,656,072  (+0.10%)
  lru       H=208  4,649,728  (-0.04%)
  rglru     H=228  4,646,564  (-0.11%)  (num_heads 4 divides H; input_norm)

(tests/test_sweep.py and tests/test_linear_recurrences.py check the match
on the initialized models.) The linear-recurrence cells run with their
defaults (associative scan; config model.<cell> for their options). Three seeds
per arm; the table reports mean ± std.

  python -m rnnlm_jax.experiment sweep experiments/ablation_cells
  python -m rnnlm_jax.experiment sweep experiments/ablation_cells --smoke  # seconds

Results: experiments/ablation_cells/results.md and learning_curves.png, written
by the sweep. Hardware/time: one run is 24-28 min alone on a 2-vCPU CPU (75 on
a slower one). Expected (seed 0, test ppl): gru 112.42, lstm 115.06, lru
129.14, rglru 129.27, mingru 132.31, minlstm 132.91, rnn_tanh 148.47;
the table, the machines and the probes behind LEARNING_RATES and
CELL_OPTIONS: README.md.

A character-level variant on the stdlib corpus: experiments/ablation_cells_char.
"""

from rnnlm_jax import recipes

# cell -> hidden size giving the LSTM-200 parameter count (see the docstring).
HIDDEN_SIZES = {'lstm': 200, 'gru': 211, 'rnn_tanh': 242, 'mingru': 243,
                'minlstm': 234, 'lru': 208, 'rglru': 228}
# cell -> SGD learning rate where the recipe's 1.0 fails: chosen on the
# validation split after 4 epochs (gru, rnn_tanh) or, where lr 1 diverges or
# stalls in the first epoch (lru: NaN by step 336; rglru: ppl ~1,500 at step
# 1,000), the GRU's rate after a 400-step check that it trains (README.md).
LEARNING_RATES = {'gru': 0.25, 'rnn_tanh': 0.1, 'lru': 0.25, 'rglru': 0.25}
# cell -> its own options under SGD: the LRU trains its phase directly, as
# exp(theta_log) runs away under a global-norm clip (models/lru.py); the
# RG-LRU normalizes each layer's input, without which its bilinear block
# passes back ~1e-5 of the gradient the LSTM's embedding gets at this init,
# and it learns no more than the unigram distribution (models/rglru.py).
CELL_OPTIONS = {'lru': {'model.lru.phase': 'linear'},
                'rglru': {'model.rglru.input_norm': True}}
SEEDS = (0, 1, 2)
# --smoke: one layer of ~16 units; the arms keep their cells.
SMOKE = {'data.max_train_tokens': 2000}


def get_config():
  return recipes.zaremba('small')


def sweep(smoke=False):
  return [(cell, {'model.cell': cell,
                  'model.hidden_size': 16 if smoke else hidden,
                  'train.learning_rate': LEARNING_RATES.get(cell, 1.0),
                  **CELL_OPTIONS.get(cell, {})})
          for cell, hidden in HIDDEN_SIZES.items()]
