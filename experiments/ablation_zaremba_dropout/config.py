"""Ablation: dropout 0 / 0.25 / 0.5 on Zaremba's medium LSTM (2 x 650, PTB).

Everything else is experiments/zaremba_medium (35-step BPTT, batch 20, SGD lr 1
for 6 epochs then x0.8 per epoch, 39 epochs, clip 5, init 0.05). The rate is
applied to all three non-recurrent places together (embedding output, between
the layers, before the softmax), as in the paper; 0.5 is the paper's medium
model (valid 86.2 / test 82.7), 0 is the unregularized medium model, which the
paper reports overfits badly.

  python -m rnnlm_jax.experiment sweep experiments/ablation_zaremba_dropout
  python -m rnnlm_jax.experiment sweep experiments/ablation_zaremba_dropout --smoke

Results: experiments/ablation_zaremba_dropout/results.md and
learning_curves.png, written by the sweep. Hardware/time: NOT YET RUN (three
medium runs: hours each on a GPU).
"""

from rnnlm_jax import recipes

RATES = (0.0, 0.25, 0.5)
SMOKE = {'data.max_train_tokens': 2000}


def get_config():
  return recipes.zaremba('medium')


def sweep():
  return [(f'dropout{rate:g}', {'model.dropout_embed': rate, 'model.dropout': rate,
                                'model.dropout_output': rate})
          for rate in RATES]
