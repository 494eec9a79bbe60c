"""The AWD-LSTM PTB config against a table typed from the paper / issue 4."""

import pathlib

import jax
import jax.numpy as jnp
import pytest

from rnnlm_jax import configs, models
from rnnlm_jax.sweep import load_module

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / 'experiments'
PTB_VOCAB = 10_000

# Typed from issue 4 / Merity et al. (2017) Section 5, not from the config.
EXPECTED = {
    'model.cell': 'lstm', 'model.num_layers': 3, 'model.embed_size': 400,
    'model.hidden_size': 1150, 'model.tie_embeddings': True,
    'model.dropout_kind': 'locked',
    'model.dropout_output': 0.4, 'model.dropout': 0.3,
    'model.dropout_embed': 0.25, 'model.dropout_embed_rows': 0.1,
    'model.weight_drop': 0.5,
    'train.batch_size': 80, 'train.seq_len': 70, 'train.learning_rate': 30.0,
    'train.clip_norm': 0.25, 'train.ar_alpha': 2.0, 'train.tar_beta': 1.0,
    'train.weight_decay': 1.2e-6, 'train.num_epochs': 500,
    'train.optimizer': 'ntasgd', 'train.ntasgd_nonmono': 5,
    'train.schedule': 'constant', 'data.level': 'word',
    'train.variable_bptt': True, 'train.bptt_p_full': 0.95,
    'train.bptt_std': 5.0, 'train.finetune_epochs': 500,
}


def _get(config, dotted):
  node = config
  for part in dotted.split('.'):
    node = node[part]
  return node


@pytest.fixture(scope='module')
def module():
  return load_module(str(EXPERIMENTS / 'awd_lstm_ptb' / 'config.py'))


def test_config_matches_the_table(module):
  c = module.get_config()
  configs.validate(c)
  models.validate(c.model)
  for key, value in EXPECTED.items():
    assert _get(c, key) == value, key
  assert module.PAPER['valid_ppl'] == 60.7 and module.PAPER['test_ppl'] == 58.8


def test_parameter_count_is_24m_without_materializing(module):
  c = module.get_config()
  model = models.make_model(c.model, PTB_VOCAB)
  assert model.layer_sizes() == (1150, 1150, 400)
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  shapes = jax.eval_shape(
      lambda t: model.init(jax.random.key(0), t, model.initial_carry(1),
                           train=False)['params'], tokens)
  n = models.count_params(shapes)
  # embedding 4,000,000 + layer_0 7,134,600 + layer_1 10,584,600
  # + layer_2 2,481,600 + output bias 10,000
  assert n == 24_210_800
  assert abs(n - 24e6) / 24e6 < 0.01
