"""The data root setting, and the real-data fixtures' skip-or-fail rule."""

import os
import subprocess
import sys

import pytest

from rnnlm_jax.data import paths

from conftest import REPO_ROOT, require_dataset


def test_env_var_sets_the_root_at_each_call(tmp_path, monkeypatch):
  monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / 'a'))
  assert paths.data_root() == str(tmp_path / 'a')
  monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / 'b'))
  assert paths.dataset_path('ptb') == str(tmp_path / 'b' / 'ptb')


def test_default_root_beside_the_checkout_else_the_cache(tmp_path, monkeypatch):
  monkeypatch.delenv(paths.ENV_VAR, raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  beside = tmp_path / 'shared' / 'data'
  monkeypatch.setattr(paths, '_BESIDE_CHECKOUT', str(beside))
  assert paths.data_root() == str(tmp_path / 'cache' / 'rnnlm_jax' / 'data')
  beside.mkdir(parents=True)
  assert paths.data_root() == str(beside)


def test_ptb_config_reads_the_data_root(tmp_path):
  # configs reads the variable when imported: a fresh interpreter sees it.
  code = 'from rnnlm_jax import configs; print(configs.ptb_config().data.path)'
  proc = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT,
                        env=dict(os.environ, RNNLM_JAX_DATA=str(tmp_path)),
                        capture_output=True, text=True, timeout=60, check=True)
  assert proc.stdout.strip() == str(tmp_path / 'ptb')


def _fake_ptb(root):
  (root / 'ptb').mkdir(parents=True)
  (root / 'ptb' / 'ptb.train.txt').write_text('a b\n')


@pytest.mark.parametrize('ci', [None, 'false', 'true', 'TRUE'])
def test_missing_data_skips_except_under_ci(tmp_path, monkeypatch, ci):
  monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
  if ci is None:
    monkeypatch.delenv('CI', raising=False)
  else:
    monkeypatch.setenv('CI', ci)
  if ci and ci.lower() == 'true':
    with pytest.raises(FileNotFoundError, match='CI=true') as info:
      require_dataset('multi30k')
  else:
    with pytest.raises(pytest.skip.Exception) as info:
      require_dataset('multi30k')
  assert 'multi30k' in str(info.value) and paths.ENV_VAR in str(info.value)
  _fake_ptb(tmp_path)
  assert require_dataset('ptb') == tmp_path / 'ptb'
