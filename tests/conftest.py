"""Test setup: fake 4 CPU devices so data-parallel code runs on every test run.

XLA reads XLA_FLAGS once, when the backend starts, so this must happen before
anything imports jax.
"""

import contextlib
import importlib.util
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

from rnnlm_jax.data import paths  # noqa: E402  (numpy only: no jax yet)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# The real datasets the data tests read, each with a file that must be there.
DATASETS = {'ptb': 'ptb.train.txt', 'multi30k': 'train.en.gz'}


def load_script(path, name: str):
  """Imports `path` (a script or an experiment's config.py: in no package)
  as a fresh module called `name`."""
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def require_dataset(name: str) -> pathlib.Path:
  """<data root>/<name>; absent: a skip naming it, but a failure under CI=true.

  CI must not silently drop the tests that check real data, so there the
  data has to be provided (scripts/get_data.py).
  """
  path = pathlib.Path(paths.dataset_path(name))
  if (path / DATASETS[name]).is_file():
    return path
  reason = (f'{name} data not found at {path} (set {paths.ENV_VAR} to the folder '
            f'holding {name}/, or run: python scripts/get_data.py {name})')
  if os.environ.get('CI', '').lower() == 'true':
    raise FileNotFoundError(f'{reason}; CI=true: missing data is a failure')
  pytest.skip(reason)


@pytest.fixture(scope='session')
def ptb_dir() -> pathlib.Path:
  """Penn Treebank, Mikolov's form: ptb.{train,valid,test}.txt."""
  return require_dataset('ptb')


@pytest.fixture(scope='session')
def multi30k_dir() -> pathlib.Path:
  """Multi30k task 1: {train,val,test_2016_flickr}.{de,en}.gz."""
  return require_dataset('multi30k')


# jax.monitoring records this event, with the function's name, each time jit
# lowers a function for an input signature it has no executable for.
_LOWERING_EVENT = '/jax/core/compile/jaxpr_to_mlir_module_duration'


@contextlib.contextmanager
def count_compiles(fun_name: str):
  """Yields a list that gets one entry per compilation of jit function `fun_name`.

  Public API only (jax.monitoring listeners), so that recompilation tests do
  not depend on jit's private cache.
  """
  import jax  # pylint: disable=import-outside-toplevel  (after XLA_FLAGS)
  compiles = []

  def listener(event, duration, **kwargs):
    if event == _LOWERING_EVENT and kwargs.get('fun_name') in (
        f'jit({fun_name})', f'jit_{fun_name}'):
      compiles.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield compiles
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture(scope='session')
def reverse_run(tmp_path_factory):
  """A seq2seq run on the reverse task, trained once for every test module."""
  from test_translation_task import train_reverse_run  # pylint: disable=import-outside-toplevel
  return train_reverse_run(tmp_path_factory)


@pytest.fixture
def fake_gcs(monkeypatch, tmp_path):
  """gs:// served from memory (fsspec's memory filesystem under the gs and
  gcs protocols, which epath uses without TensorFlow); the cache mirror in
  tmp_path/mirror. Yields the store {path: file}."""
  import sys  # pylint: disable=import-outside-toplevel
  from etils.epath import backend, gpath  # pylint: disable=import-outside-toplevel
  from fsspec.implementations.memory import MemoryFileSystem  # pylint: disable=import-outside-toplevel

  class FakeGCS(MemoryFileSystem):
    protocol = ('gs', 'gcs')
    store = {}
    pseudo_dirs = ['']

  registry = sys.modules['fsspec.registry']._registry
  saved = {p: registry.get(p) for p in FakeGCS.protocol}
  registry.update({p: FakeGCS for p in FakeGCS.protocol})
  backend.fsspec_backend._get_filesystem.cache_clear()  # epath caches the fs
  monkeypatch.setattr(gpath, '_is_tf_installed', lambda: False)
  monkeypatch.setenv('RNNLM_JAX_CACHE_MIRROR', str(tmp_path / 'mirror'))
  yield FakeGCS.store
  for protocol, cls in saved.items():
    if cls is None:
      registry.pop(protocol, None)
    else:
      registry[protocol] = cls
  backend.fsspec_backend._get_filesystem.cache_clear()
