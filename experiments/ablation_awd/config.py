"""Ablation: AWD-LSTM on PTB with one component removed per arm.

The arms of Table 4 of Merity et al. (2017) that this codebase implements,
each being experiments/awd_lstm_ptb with one change:

  awd_lstm              the full recipe, fine-tuning included
  no_finetune           train.finetune_epochs=0 (the paper's Table 1 row too)
  no_ntasgd             train.optimizer='sgd' (plain SGD at lr 30, no average;
                        no fine-tuning either: it is averaged SGD itself)
  fixed_bptt            train.variable_bptt=False (every window 70 steps)
  no_embedding_dropout  model.dropout_embed_rows=0
  no_weight_decay       train.weight_decay=0
  no_ar_tar             train.ar_alpha=train.tar_beta=0
  full_embedding        model.embed_size=1150 (so the tied last layer too)
  no_weight_drop        model.weight_drop=0

The paper's "- NT-ASGD" arm is plain SGD here (the paper's SGD baseline
details differ). Compare results.md with the paper's Table 4 by arm name.

  python -m rnnlm_jax.experiment sweep experiments/ablation_awd
  python -m rnnlm_jax.experiment sweep experiments/ablation_awd --smoke  # seconds

Results: experiments/ablation_awd/results.md and learning_curves.png, written
by the sweep. Hardware/time: NOT YET RUN (8 full AWD-LSTM runs: days each on
one GPU at 500 epochs).
"""

from rnnlm_jax import recipes

ARMS = {
    'awd_lstm': {},
    'no_finetune': {'train.finetune_epochs': 0},
    'no_ntasgd': {'train.optimizer': 'sgd', 'train.finetune_epochs': 0},
    'fixed_bptt': {'train.variable_bptt': False},
    'no_embedding_dropout': {'model.dropout_embed_rows': 0.0},
    'no_weight_decay': {'train.weight_decay': 0.0},
    'no_ar_tar': {'train.ar_alpha': 0.0, 'train.tar_beta': 0.0},
    'full_embedding': {'model.embed_size': 1150},
    'no_weight_drop': {'model.weight_drop': 0.0},
}
# --smoke: the default tiny settings (1 layer of 16 units, 4 steps), little
# data, and NT-ASGD's interval at 1 check so the switch can happen; the arms
# that fine-tune do so for 4 steps (see sweep()).
SMOKE = {'data.max_train_tokens': 2000, 'train.ntasgd_nonmono': 1,
         'eval.method': 'static'}
SMOKE_FINETUNE_STEPS = 4


def get_config():
  return recipes.awd_lstm_ptb()


def sweep(smoke=False):
  arms = []
  for name, overrides in ARMS.items():
    if smoke and 'train.finetune_epochs' not in overrides:
      overrides = dict(overrides, **{'train.finetune_steps': SMOKE_FINETUNE_STEPS})
    arms.append((name, overrides))
  return arms
