"""Schedules and optimizers built from config.train."""

import numpy as np
import optax
import pytest

from rnnlm_jax import configs
from rnnlm_jax.training import optim


def _train(**overrides):
  c = configs.base_config()
  for k, v in overrides.items():
    c.train[k] = v
  return c.train


def test_zaremba_step_decay_matches_the_papers_rule():
  # Small config: lr 1 for 4 epochs, then x0.5 each epoch (TF PTB tutorial).
  schedule = optim.make_schedule(
      _train(schedule='step_decay', learning_rate=1.0, decay_start_epoch=4,
             decay_rate=0.5), steps_per_epoch=10, total_steps=130)
  per_epoch = [float(schedule(epoch * 10 + 3)) for epoch in range(7)]
  np.testing.assert_allclose(per_epoch, [1, 1, 1, 1, 0.5, 0.25, 0.125])
  # The change happens exactly at the epoch boundary.
  assert float(schedule(39)) == 1.0 and float(schedule(40)) == 0.5


def test_medium_decay_rate():
  schedule = optim.make_schedule(
      _train(schedule='step_decay', decay_start_epoch=6, decay_rate=0.8),
      steps_per_epoch=5, total_steps=200)
  assert float(schedule(5 * 5)) == 1.0
  np.testing.assert_allclose(float(schedule(5 * 7)), 0.8 ** 2, rtol=1e-6)


def test_warmup_then_cosine():
  schedule = optim.make_schedule(
      _train(schedule='cosine', learning_rate=2.0, warmup_steps=10),
      steps_per_epoch=1, total_steps=110)
  assert float(schedule(0)) == 0.0
  np.testing.assert_allclose(float(schedule(10)), 2.0, rtol=1e-6)
  assert float(schedule(109)) < 0.01


def test_clipping_bounds_the_update():
  tx, _ = optim.make_optimizer(
      _train(optimizer='sgd', schedule='constant', learning_rate=1.0,
             clip_norm=5.0), steps_per_epoch=1, total_steps=1)
  params = {'w': np.zeros(4, np.float32)}
  grads = {'w': np.full(4, 100.0, np.float32)}
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(float(optax.global_norm(updates)), 5.0, rtol=1e-5)


@pytest.mark.parametrize('key,value', [('optimizer', 'rmsprop'),
                                       ('schedule', 'exponential')])
def test_unknown_choice_names_the_key(key, value):
  with pytest.raises(ValueError, match=f'train.{key}'):
    optim.make_optimizer(_train(**{key: value}), 1, 1)
