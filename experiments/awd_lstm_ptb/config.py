"""Merity, Keskar & Socher (2017), AWD-LSTM on PTB ("Regularizing and
Optimizing LSTM Language Models", arXiv:1708.02182).

A 3-layer LSTM, embedding 400, hidden 1150, the last layer 400 units so that
the softmax is tied to the embedding (24M parameters); locked (variational)
dropout on the word vectors / between layers / on the output, embedding
(word) dropout, DropConnect 0.5 on the recurrent matrices, AR 2 and TAR 1,
NT-ASGD (SGD lr 30, non-monotone interval n=5 validation checks, one per
epoch), gradient clipping 0.25, L2 weight decay 1.2e-6, batch 20, and
variable BPTT: N(70, 5) with probability 0.95, else N(35, 5), the step's
learning rate scaled by length / 70 (lengths bucketed to multiples of 5).
Then the fine-tuning stage (train.finetune_epochs, up to 500 epochs as the
repo's finetune.py command): ASGD restarted from the best averaged weights,
averaging from its first step, until NT-ASGD's rule triggers; it runs in
<workdir>/finetune, and results.json reports the fine-tuned valid/test ppl
with the main run's as before_finetune_valid_ppl / before_finetune_test_ppl.
Paper (Table 1): valid 60.7 / test 58.8 without fine-tuning, 60.0 / 57.3
with it.

The recipe is the official repo's (salesforce/awd-lstm-lm) README command
for word-level PTB with the LSTM, i.e. main.py's argparse defaults with the
README's flags on top:

  python main.py --batch_size 20 --data data/penn --dropouti 0.4 \
      --dropouth 0.25 --seed 141 --epoch 500 --save PTB.pt
  python finetune.py <the same flags>

(README: valid / test ~61.2 / 58.8 without fine-tuning, ~58.8 / 56.5 with.)
So: batch 20, dropouti 0.4 (word vectors), dropouth 0.25 (between layers),
seed 141, 500 epochs; from main.py: lr 30, clip 0.25, bptt 70, emsize 400,
nhid 1150, nlayers 3, dropout 0.4 (output), dropoute 0.1, wdrop 0.5, alpha 2,
beta 1, wdecay 1.2e-6, nonmono 5, tied, no lr division (--when -1), eval
batch 10, test batch 1; fine-tuning 500 epochs at most. As PyTorch's LSTM
there: two biases per gate unit (b_ih, b_hh) and PyTorch's init (recurrent
weights and biases U(+-1/sqrt(H)): +-0.0295 for H=1150, +-0.05 for the
400-unit last layer; embedding U(+-0.1); decoder bias 0), so 24,221,600
parameters with PTB's 10k vocabulary. The seed is the same number, not the
same random stream (torch's and numpy's generators are not JAX's).

`sweep()` also offers main.py's bare defaults as the arm 'main_py_defaults'
(MAIN_PY_DEFAULTS: batch 80, dropouti 0.65, dropouth 0.3, seed 1111,
8000 epochs at most):

  python -m rnnlm_jax.experiment sweep experiments/awd_lstm_ptb

Where this differs from the reference:
- Variable BPTT lengths are clipped to +-2 std and rounded to multiples of 5
  (10 distinct lengths, so 10 compilations); AWD draws any integer >= 5.
  finetune.py draws its lengths from numpy seed 331 whatever --seed says;
  here the fine-tuning stage draws from config.seed like the main run.
- The paper's Section 5 text differs from the README command (batch 40,
  750 epochs, dropouth 0.3); PAPER_TEXT keeps those values.

  python -m rnnlm_jax.experiment train --config experiments/awd_lstm_ptb/config.py

PTB is read from data.path (default: <data root>/ptb, $RNNLM_JAX_DATA or
../shared/data beside this checkout; `python scripts/get_data.py ptb`).
Hardware/time: not reproduced yet (days on one GPU for 500 epochs +
fine-tuning); README.md has the runs so far.
"""

from rnnlm_jax import recipes

# Published numbers (Table 1), for comparison with results.json.
PAPER = {'valid_ppl': 60.7, 'test_ppl': 58.8,
         'valid_ppl_finetuned': 60.0, 'test_ppl_finetuned': 57.3,
         'num_params': 24_000_000}
# The official repo's README numbers for the command this config is.
README = {'valid_ppl': 61.2, 'test_ppl': 58.8,
          'valid_ppl_finetuned': 58.8, 'test_ppl_finetuned': 56.5}
# The paper's Section 5 values where this config differs (see the docstring).
PAPER_TEXT = {'model.dropout': 0.3, 'train.batch_size': 40,
              'train.num_epochs': 750}
# main.py's own defaults where the README command overrides them.
MAIN_PY_DEFAULTS = {'train.batch_size': 80, 'model.dropout_embed': 0.65,
                    'model.dropout': 0.3, 'seed': 1111,
                    'train.num_epochs': 8000, 'train.finetune_epochs': 8000}


def get_config():
  return recipes.awd_lstm_ptb()


def sweep():
  """The README command, and main.py's own defaults."""
  return [('readme', {}), ('main_py_defaults', dict(MAIN_PY_DEFAULTS))]
