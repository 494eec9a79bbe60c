"""Data parallelism: the 4-device step equals the 1-device step."""

import jax
import numpy as np
import pytest

from rnnlm_jax import configs, data, models
from rnnlm_jax.training import scoring
from rnnlm_jax.training import optim, parallel, steps
from rnnlm_jax.training.steps import train_step

VOCAB, BATCH, SEQ = 37, 8, 6


def _model(dropout):
  c = configs.base_config().model
  c.num_layers, c.hidden_size, c.embed_size = 2, 16, 16
  c.dropout_embed = c.dropout = c.dropout_output = dropout
  return models.make_model(c, VOCAB)


def _train_steps(devices, dropout, num_steps=4, normalization='token'):
  mesh = parallel.make_mesh(devices)
  model = _model(dropout)
  train_config = configs.base_config().train
  train_config.optimizer, train_config.learning_rate = 'adam', 1e-2
  tx, _ = optim.make_optimizer(train_config, 100, 100)
  state = steps.create_train_state(model, tx, 0, BATCH, SEQ)
  state = jax.device_put(state, parallel.replicated(mesh))
  sharding = parallel.batch_sharded(mesh, BATCH)
  carry = scoring.initial_carry(model, BATCH, sharding)
  stream = np.random.default_rng(0).integers(0, VOCAB, 1000).astype(np.int32)
  windows = data.bptt_windows(stream, BATCH, SEQ)
  for _ in range(num_steps):
    batch = parallel.to_global(next(windows), sharding, BATCH)
    state, carry, metrics = train_step(state, batch, carry,
                                       loss_normalization=normalization)
  return jax.device_get(state.params), jax.device_get(carry), jax.device_get(metrics), state


@pytest.mark.parametrize('dropout,normalization', [(0.0, 'token'), (0.3, 'sequence')])
def test_four_devices_match_one(dropout, normalization):
  assert jax.device_count() == 4, 'conftest should fake 4 CPU devices'
  one = _train_steps(jax.devices()[:1], dropout, normalization=normalization)
  four = _train_steps(jax.devices(), dropout, normalization=normalization)
  for a, b in zip(jax.tree.leaves(one[:3]), jax.tree.leaves(four[:3])):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_batch_is_split_and_params_replicated():
  *_, state = _train_steps(jax.devices(), 0.0, num_steps=1)
  for leaf in jax.tree.leaves(state.params):
    assert leaf.sharding.is_fully_replicated
  mesh = parallel.make_mesh()
  sharding = parallel.batch_sharded(mesh, BATCH)
  batch = parallel.to_global(next(data.bptt_windows(np.arange(200) % VOCAB, BATCH, SEQ)),
                             sharding, BATCH)
  shard_rows = {s.data.shape[0] for s in batch.inputs.addressable_shards}
  assert shard_rows == {BATCH // 4}


def test_indivisible_batch_is_a_clear_error():
  with pytest.raises(ValueError, match='train.batch_size=10 is not divisible by the 4 devices'):
    parallel.check_divisible(10, parallel.make_mesh(), 'train.batch_size')


def test_prefetch_keeps_order_and_values():
  mesh = parallel.make_mesh()
  sharding = parallel.batch_sharded(mesh, BATCH)
  stream = np.arange(500) % VOCAB
  host = list(data.bptt_windows(stream, BATCH, SEQ))
  device = list(parallel.prefetch_to_device(iter(host), sharding, BATCH, size=3))
  assert len(device) == len(host)
  for h, d in zip(host, device):
    np.testing.assert_array_equal(h.inputs, np.asarray(d.inputs))
    assert d.inputs.sharding == sharding
