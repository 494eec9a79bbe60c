"""Every experiments/<name>/config.py: loads, passes the config checks, and
its docstring gives the command that runs it."""

import pathlib

import pytest

from rnnlm_jax import config_checks, models, sweep

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / 'experiments'
NAMES = sorted(p.parent.name for p in EXPERIMENTS.glob('*/config.py'))


def test_there_are_experiments():
  assert len(NAMES) > 10 and 'quickstart' in NAMES


@pytest.mark.parametrize('name', NAMES)
def test_the_config_is_valid_and_documents_its_command(name):
  module = sweep.load_module(str(EXPERIMENTS / name / 'config.py'))
  config = module.get_config()
  config_checks.validate(config)
  models.validate(config.model)
  assert 'python -m rnnlm_jax.experiment' in (module.__doc__ or ''), name
