"""`pip install .` ships every package and the CLI runs from the install alone."""

import os
import shutil
import subprocess
import sys

from conftest import REPO_ROOT

# Every folder of rnnlm_jax/ with an __init__.py, as a dotted name: a package
# added later is checked without editing this test.
PACKAGES = sorted(
    '.'.join(p.parent.relative_to(REPO_ROOT).parts)
    for p in (REPO_ROOT / 'rnnlm_jax').rglob('__init__.py'))


def test_install_holds_every_package_and_runs_the_cli(tmp_path):
  assert {'rnnlm_jax', 'rnnlm_jax.data', 'rnnlm_jax.data.sources',
          'rnnlm_jax.models', 'rnnlm_jax.training'} <= set(PACKAGES)
  # Built from a copy: an in-tree build would leave build/ and *.egg-info in
  # the checkout, and other test runs may share it.
  source = tmp_path / 'source'
  shutil.copytree(REPO_ROOT / 'rnnlm_jax', source / 'rnnlm_jax',
                  ignore=shutil.ignore_patterns('__pycache__'))
  shutil.copy(REPO_ROOT / 'pyproject.toml', source)
  target = tmp_path / 'site'
  # No network: no index, no build isolation (setuptools and wheel come from
  # this environment, requirements.txt), no dependencies.
  pip = subprocess.run(
      [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
       '--no-build-isolation', '--no-index', '--target', str(target),
       str(source)], capture_output=True, text=True, timeout=120)
  assert pip.returncode == 0, pip.stdout + pip.stderr

  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  env = dict(os.environ, PYTHONPATH=str(target))

  def python(*args):
    return subprocess.run([sys.executable, *args], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)

  cli = python('-m', 'rnnlm_jax.experiment', '--help')
  assert cli.returncode == 0, cli.stderr
  assert 'python -m rnnlm_jax.experiment train' in cli.stdout
  check = ('import importlib, sys\n'
           'for name in sys.argv[1:]:\n'
           '  print(name, importlib.import_module(name).__file__)\n')
  imported = python('-c', check, *PACKAGES)
  assert imported.returncode == 0, imported.stderr
  files = dict(line.split(' ', 1) for line in imported.stdout.splitlines())
  assert sorted(files) == PACKAGES
  for name, file in files.items():
    assert file.startswith(str(target)), f'{name} imported from {file}'
