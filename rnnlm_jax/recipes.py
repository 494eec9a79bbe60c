"""Published recipes as importable configs, shared by experiments.

`experiments/<name>/config.py` files build on these (an ablation of the
Zaremba medium model starts from `zaremba('medium')`) instead of loading a
sibling experiment's file by path.
"""

import ml_collections

from rnnlm_jax import configs

# Zaremba et al. (2014), Section 4.1: what the medium and large models change
# from the small one (dropout on the non-recurrent connections, init range,
# BPTT length, epochs, the epoch the decay starts, decay per epoch, clipping).
ZAREMBA_SIZES = {
    'small': {},
    'medium': {'model.hidden_size': 650, 'model.embed_size': 650,
               'model.dropout_embed': 0.5, 'model.dropout': 0.5,
               'model.dropout_output': 0.5, 'model.init_scale': 0.05,
               'train.seq_len': 35, 'train.num_epochs': 39,
               'train.decay_start_epoch': 6, 'train.decay_rate': 0.8},
    'large': {'model.hidden_size': 1500, 'model.embed_size': 1500,
              'model.dropout_embed': 0.65, 'model.dropout': 0.65,
              'model.dropout_output': 0.65, 'model.init_scale': 0.04,
              'train.seq_len': 35, 'train.num_epochs': 55,
              'train.decay_start_epoch': 14, 'train.decay_rate': 1 / 1.15,
              'train.clip_norm': 10.0},
}


def zaremba(size: str = 'small') -> ml_collections.ConfigDict:
  """Zaremba et al. (2014)'s PTB word-level LSTM of `size` (small | medium |
  large): 2 layers, uniform init, SGD lr 1 with step decay, loss summed over
  time (their TF code), test at batch 1."""
  if size not in ZAREMBA_SIZES:
    raise ValueError(f'size={size!r} is not one of {tuple(ZAREMBA_SIZES)}')
  c = configs.ptb_config()
  c.model.cell = 'lstm'
  c.model.num_layers = 2
  c.model.hidden_size = 200
  c.model.embed_size = 200
  c.model.init_scale = 0.1
  c.model.forget_bias = 0.0
  c.train.batch_size = 20
  c.train.seq_len = 20
  c.train.num_epochs = 13
  c.train.optimizer = 'sgd'
  c.train.learning_rate = 1.0
  c.train.schedule = 'step_decay'
  c.train.decay_start_epoch = 4
  c.train.decay_rate = 0.5
  c.train.clip_norm = 5.0
  c.train.loss_normalization = 'sequence'
  c.train.log_every_steps = 200
  c.eval.batch_size = 20  # validation during training (carried state)
  c.eval.test_batch_size = 1  # final test number, as the paper
  c.generate.prompt = 'the'
  c.generate.length = 50
  for key, value in ZAREMBA_SIZES[size].items():
    section, name = key.split('.')
    c[section][name] = value
  return c
