"""The AWD-LSTM ablation sweep: its arms, and its smoke sweep end to end."""

import json
import pathlib

import pytest

from rnnlm_jax import config_checks, models, sweep
from rnnlm_jax.training import run_files

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / 'experiments'
ABLATION = EXPERIMENTS / 'ablation_awd' / 'config.py'

# Typed from the paper's Table 4 (the arms implemented here): arm -> changes.
EXPECTED = {
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


def _flat(config):
  return run_files.flatten(json.loads(config.to_json_best_effort()))


@pytest.mark.parametrize('smoke', [False, True])
def test_arms_are_the_full_recipe_minus_one_part(smoke):
  module = sweep.load_module(str(ABLATION))
  awd = sweep.load_module(str(EXPERIMENTS / 'awd_lstm_ptb' / 'config.py'))
  full = _flat(awd.get_config())
  arms = sweep.arms(module, smoke)
  assert [a.name for a in arms] == list(EXPECTED)
  for arm in arms:
    config = sweep.arm_config(module, arm, smoke)
    config_checks.validate(config)
    models.validate(config.model)
    if smoke:
      assert config.train.num_steps <= 10
      assert config.train.finetune_steps <= 10
      finetunes = 'train.finetune_epochs' not in EXPECTED[arm.name]
      assert bool(config.train.finetune_steps) == finetunes, arm.name
      continue
    changed = {k: v for k, v in _flat(config).items() if full.get(k) != v}
    assert changed == EXPECTED[arm.name], arm.name
  assert 'python -m rnnlm_jax.experiment sweep experiments/ablation_awd' in \
      module.__doc__


WRAPPER = '''
from rnnlm_jax import sweep as sweep_lib

_ABLATION = sweep_lib.load_module({path!r})
sweep = _ABLATION.sweep

def get_config():
  c = _ABLATION.get_config()
  c.data.source = 'synthetic'  # PTB need not be on the test machine
  c.data.synthetic.vocab_size = 20
  c.data.synthetic.tokens = (2000, 300, 300)
  return c

SMOKE = dict(_ABLATION.SMOKE, **{{'data.max_train_tokens': 0}})
'''


def _smoke(tmp_path, only=()):
  folder = tmp_path / 'ablation_awd_synthetic'
  folder.mkdir()
  (folder / 'config.py').write_text(WRAPPER.format(path=str(ABLATION)))
  result = sweep.run_sweep(str(folder), smoke=True, only=only, log=lambda _: None)
  names = list(only or EXPECTED)
  assert [(r['arm'], r['status']) for r in result.runs] == [
      (name, 'ran') for name in names]
  for run in result.runs:
    assert run['results']['steps'] == 4
    assert run['results']['valid_ppl'] > 1
    finetuned = 'train.finetune_epochs' not in EXPECTED[run['arm']]
    assert ('before_finetune_valid_ppl' in run['results']) == finetuned
  table = pathlib.Path(result.results_md).read_text()
  for name in names:
    assert f'| {name} |' in table


def test_smoke_sweep_full_and_no_ntasgd_arms(tmp_path):
  # The full arm exercises every AWD part at once (locked / embedding / weight
  # dropout, AR/TAR, NT-ASGD, variable BPTT, fine-tuning); ~40 s on 2 CPU cores.
  _smoke(tmp_path, only=('awd_lstm', 'no_ntasgd'))


@pytest.mark.slow
def test_smoke_sweep_runs_every_arm(tmp_path):  # ~2.5 min on 2 CPU cores
  _smoke(tmp_path)
