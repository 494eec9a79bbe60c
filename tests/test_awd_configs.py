"""The AWD-LSTM PTB config against the reference command it reproduces.

The reference is salesforce/awd-lstm-lm's README command for word-level PTB
(LSTM), `python main.py --batch_size 20 --data data/penn --dropouti 0.4
--dropouth 0.25 --seed 141 --epoch 500 --save PTB.pt` (then finetune.py with
the same flags): main.py's argparse defaults, typed below from main.py's
source (not from the config), with the README's flags on top.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import config_checks, models, sweep
from rnnlm_jax.sweep import load_module

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / 'experiments'
PTB_VOCAB = 10_000

# main.py's parser.add_argument defaults (--data, --cuda, --log-interval,
# --save, --resume: paths and logging, not the recipe).
MAIN_PY_DEFAULTS = {
    'model': 'LSTM', 'emsize': 400, 'nhid': 1150, 'nlayers': 3, 'lr': 30.0,
    'clip': 0.25, 'epochs': 8000, 'batch_size': 80, 'bptt': 70,
    'dropout': 0.4, 'dropouth': 0.3, 'dropouti': 0.65, 'dropoute': 0.1,
    'wdrop': 0.5, 'seed': 1111, 'nonmono': 5, 'alpha': 2.0, 'beta': 1.0,
    'wdecay': 1.2e-6, 'optimizer': 'sgd', 'when': [-1],
}
# Set in main.py's code rather than by a flag.
MAIN_PY_FIXED = {
    'tied': True,  # args.tied = True
    'eval_batch_size': 10, 'test_batch_size': 1,
    'bptt_p_full': 0.95, 'bptt_std': 5.0,  # 0.95 / N(bptt, 5) in train()
}
# The README's PTB flags (--epoch is argparse's prefix match of --epochs).
README_FLAGS = {'batch_size': 20, 'dropouti': 0.4, 'dropouth': 0.25,
                'seed': 141, 'epochs': 500}
REFERENCE = {**MAIN_PY_DEFAULTS, **MAIN_PY_FIXED, **README_FLAGS}

# reference name -> [(config key, the value the reference value means)]
MEANING = {
    'model': lambda v: [('model.cell', v.lower()), ('model.type', 'rnn')],
    'emsize': lambda v: [('model.embed_size', v)],
    'nhid': lambda v: [('model.hidden_size', v)],
    'nlayers': lambda v: [('model.num_layers', v)],
    'lr': lambda v: [('train.learning_rate', v)],
    'clip': lambda v: [('train.clip_norm', v)],
    # main.py's --epochs; finetune.py gets the same flags
    'epochs': lambda v: [('train.num_epochs', v), ('train.finetune_epochs', v)],
    'batch_size': lambda v: [('train.batch_size', v)],
    'bptt': lambda v: [('train.seq_len', v), ('train.variable_bptt', True)],
    'dropout': lambda v: [('model.dropout_output', v),
                          ('model.dropout_kind', 'locked')],
    'dropouth': lambda v: [('model.dropout', v)],
    'dropouti': lambda v: [('model.dropout_embed', v)],
    'dropoute': lambda v: [('model.dropout_embed_rows', v)],
    'wdrop': lambda v: [('model.weight_drop', v)],
    'seed': lambda v: [('seed', v)],
    'nonmono': lambda v: [('train.ntasgd_nonmono', v)],
    'alpha': lambda v: [('train.ar_alpha', v)],
    'beta': lambda v: [('train.tar_beta', v)],
    'wdecay': lambda v: [('train.weight_decay', v)],
    # SGD, switched to ASGD by the non-monotone rule: NT-ASGD
    'optimizer': lambda v: [('train.optimizer', {'sgd': 'ntasgd'}[v])],
    # --when -1: the lr is never divided
    'when': lambda v: [('train.schedule', 'constant' if v == [-1] else None)],
    'tied': lambda v: [('model.tie_embeddings', v)],
    'eval_batch_size': lambda v: [('eval.batch_size', v)],
    'test_batch_size': lambda v: [('eval.test_batch_size', v)],
    'bptt_p_full': lambda v: [('train.bptt_p_full', v)],
    'bptt_std': lambda v: [('train.bptt_std', v)],
}
# torch.nn.LSTM as AWD builds it: two biases, PyTorch's init; model.py's
# init_weights: embedding U(+-0.1), decoder bias 0.
PYTORCH_LSTM = {'model.two_biases': True, 'model.init_scheme': 'pytorch',
                'model.init_scale': 0.1, 'data.level': 'word'}


def _expected(reference):
  expected = dict(PYTORCH_LSTM)
  for name, value in reference.items():
    expected.update(MEANING[name](value))
  return expected


def _get(config, dotted):
  node = config
  for part in dotted.split('.'):
    node = node[part]
  return node


@pytest.fixture(scope='module')
def module():
  return load_module(str(EXPERIMENTS / 'awd_lstm_ptb' / 'config.py'))


def test_config_is_main_py_with_the_readme_flags(module):
  c = module.get_config()
  config_checks.validate(c)
  models.validate(c.model)
  assert set(MEANING) == set(REFERENCE)  # every reference value is checked
  for key, value in _expected(REFERENCE).items():
    assert _get(c, key) == value, key
  assert module.PAPER['valid_ppl'] == 60.7 and module.PAPER['test_ppl'] == 58.8
  assert module.README == {'valid_ppl': 61.2, 'test_ppl': 58.8,
                           'valid_ppl_finetuned': 58.8,
                           'test_ppl_finetuned': 56.5}
  readme = (EXPERIMENTS / 'awd_lstm_ptb' / 'README.md').read_text()
  command = ('python main.py --batch_size 20 --data data/penn --dropouti 0.4 '
             '--dropouth 0.25 --seed 141 --epoch 500 --save PTB.pt')
  assert command in readme and 'finetune.py' in readme


def test_main_py_defaults_arm(module):
  arms = sweep.arms(module, False)
  assert [a.name for a in arms] == ['readme', 'main_py_defaults']
  c = sweep.arm_config(module, arms[1], False)
  config_checks.validate(c)
  for key, value in _expected({**MAIN_PY_DEFAULTS, **MAIN_PY_FIXED}).items():
    assert _get(c, key) == value, key


def test_parameter_count_is_pytorchs_without_materializing(module):
  c = module.get_config()
  model = models.make_model(c.model, PTB_VOCAB)
  assert model.layer_sizes() == (1150, 1150, 400)
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  shapes = jax.eval_shape(
      lambda t: model.init(jax.random.key(0), t, model.initial_carry(1),
                           train=False)['params'], tokens)
  n = models.count_params(shapes)
  # embedding 4,000,000 + layer_0 7,139,200 + layer_1 10,589,200
  # + layer_2 2,483,200 + output bias 10,000; as torch's (two biases)
  assert n == 24_221_600
  assert abs(n - 24e6) / 24e6 < 0.01


def test_init_is_pytorchs_at_the_real_shapes(module):
  c = module.get_config()
  model = models.make_model(c.model, 16)  # the layers at full size
  params = jax.jit(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 1), jnp.int32), model.initial_carry(1),
      train=False)['params'])()
  for i, bound in enumerate((0.0295, 0.0295, 0.05)):  # 1/sqrt(1150), 1/sqrt(400)
    for name, value in params[f'layer_{i}'].items():
      top = float(jnp.abs(value).max())
      assert bound * 0.99 < top <= bound * 1.001, (i, name, top)
  assert 0.099 < float(jnp.abs(params['embedding']).max()) <= 0.1
  np.testing.assert_array_equal(params['output_bias'], 0.0)
