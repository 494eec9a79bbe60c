"""A checkpoint written on one mesh resumes on a mesh of another size.

Runs the real driver (trainer.open_stage / trainer.fit) on the first n of the 4 fake
CPU devices by pointing parallel.make_mesh at them. Orbax restores into the
shardings of the freshly built state and carry, so parameters land replicated
on the new devices and the carried hidden state [B, H] split over them.
"""

import contextlib
import shutil

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from rnnlm_jax import configs, metrics
from rnnlm_jax.training import parallel, trainer

SAVED_AT, CONTINUE_TO = 3, 5
_make_mesh = parallel.make_mesh


def tiny_config(num_steps):
  c = configs.base_config()
  c.data.source, c.data.level = 'synthetic', 'word'
  c.data.synthetic.vocab_size, c.data.synthetic.order = 12, 1
  c.data.synthetic.tokens = (2000, 200, 200)
  c.model.num_layers, c.model.hidden_size, c.model.embed_size = 2, 16, 8
  c.model.dropout = c.model.dropout_output = 0.2  # the dropout key must resume too
  c.model.unroll = 1
  c.train.batch_size, c.train.seq_len = 4, 8  # divides 1, 2 and 4 devices
  c.train.num_steps = num_steps
  c.train.optimizer, c.train.learning_rate = 'adam', 1e-2
  c.train.schedule = 'constant'
  c.train.log_every_steps = 100
  c.train.progress_bar = False
  c.eval.batch_size = 4
  return c


@contextlib.contextmanager
def on_devices(n):
  """Every mesh the loop makes uses the first n devices."""
  devices = jax.devices()[:n]
  parallel.make_mesh = lambda devices_=None: _make_mesh(devices)
  try:
    yield
  finally:
    parallel.make_mesh = _make_mesh


def train(workdir, n_devices, num_steps, check=None):
  """Builds (restoring what `workdir` holds) and trains on n devices."""
  with on_devices(n_devices):
    run = trainer.open_stage(tiny_config(num_steps), str(workdir))
    if check is not None:
      check(run)
    run = trainer.fit(run, metrics.MetricWriter(str(workdir), enabled=False))
    run.checkpointer.close()
  return jax.device_get(run.state.params), jax.device_get(run.carry)


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
  """Per source mesh size: a run saved at step 3 and its continuation to 5."""
  cache = {}

  def get(n):
    if n not in cache:
      root = tmp_path_factory.mktemp(f'source{n}')
      saved = train(root / 'run', n, SAVED_AT)
      shutil.copytree(root / 'run', root / 'same_mesh')
      continued = train(root / 'same_mesh', n, CONTINUE_TO)
      cache[n] = dict(workdir=root / 'run', saved=saved, continued=continued)
    return cache[n]

  return get


def _assert_tree(check, a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b) > 0
  for x, y in zip(leaves_a, leaves_b):
    check(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize('source,target', [(4, 1), (4, 2), (1, 4), (2, 4)])
def test_resume_on_another_number_of_devices(source, target, sources, tmp_path):
  src = sources(source)
  workdir = tmp_path / 'run'
  shutil.copytree(src['workdir'], workdir)
  saved_params, saved_carry = src['saved']
  assert all(np.abs(x).max() > 0 for x in jax.tree.leaves(saved_carry))

  def check_restored(run):
    assert run.step == SAVED_AT
    devices = set(jax.devices()[:target])
    _assert_tree(np.testing.assert_array_equal, run.state.params, saved_params)
    _assert_tree(np.testing.assert_array_equal, run.carry, saved_carry)
    for leaf in jax.tree.leaves(run.state.params):
      assert leaf.sharding.device_set == devices and leaf.sharding.is_fully_replicated
    for leaf in jax.tree.leaves(run.carry):  # [B, H], rows over the new mesh
      assert leaf.sharding.device_set == devices
      assert leaf.sharding.spec == P(parallel.DATA_AXIS)
      assert {s.data.shape[0] for s in leaf.addressable_shards} == {4 // target}

  params, carry = train(workdir, target, CONTINUE_TO, check=check_restored)
  same_mesh_params, same_mesh_carry = src['continued']
  close = lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6)
  _assert_tree(close, params, same_mesh_params)
  _assert_tree(close, carry, same_mesh_carry)
