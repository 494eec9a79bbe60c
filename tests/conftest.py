"""Test setup: fake 4 CPU devices so data-parallel code runs on every test run.

XLA reads XLA_FLAGS once, when the backend starts, so this must happen before
anything imports jax.
"""

import os
import pathlib

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4'
    # The 4 fake devices meet in all-reduces; XLA aborts the process when one
    # waits longer than its (short) default, which a loaded 2-core CI machine
    # can exceed without anything being wrong.
    ' --xla_cpu_collective_call_terminate_timeout_seconds=600'
    ' --xla_cpu_collective_timeout_seconds=600'
).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# XLA compiles dominate CPU test time; share them between tests and the CLI
# subprocesses they start (which inherit this environment).
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', '/tmp/rnnlm_jax_test_xla_cache')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.3')

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def ptb_dir() -> pathlib.Path:
  """The real Penn Treebank (Mikolov form) shipped beside the checkout."""
  path = SHARED_DATA / 'ptb'
  if not (path / 'ptb.train.txt').exists():
    raise FileNotFoundError(
        f'{path} is missing: tests expect ../shared/data/ptb beside the repo')
  return path


@pytest.fixture(scope='session')
def multi30k_dir() -> pathlib.Path:
  """Multi30k task 1 (De-En, raw gzip files) shipped beside the checkout."""
  path = SHARED_DATA / 'multi30k'
  if not (path / 'train.de.gz').exists():
    raise FileNotFoundError(
        f'{path} is missing: tests expect ../shared/data/multi30k beside the '
        'repo')
  return path
