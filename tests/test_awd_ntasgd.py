"""NT-ASGD: the non-monotone trigger, the running average, and the loop."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnlm_jax import config_checks, configs
from rnnlm_jax.training import inference, optim, trainer

from test_train_loop import tiny_config


def _params():
  return {'w': jnp.arange(6.0).reshape(2, 3), 'b': jnp.ones(3)}


def test_trigger_fires_at_the_right_check():
  # nonmono 3: check k compares with min(losses[:k-3]) once k > 3.
  losses = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.9, 3.05, 2.0]
  # k=4: 3.2 > min(5)? no. k=5: 3.1 > min(5,4)? no. k=6: 2.9 > 3? no.
  # k=7: 3.05 > min(5,4,3,3.5)=3 -> switch.
  state = optim.averaged(optax.sgd(0.1)).init(_params())
  history, switched_at = [], []
  for k, loss in enumerate(losses):
    state, switched = optim.switch_if_triggered(state, history, loss, 3)
    if switched:
      switched_at.append(k)
  assert switched_at == [7]  # once, and never again
  assert bool(state.averaging)
  assert history == losses
  assert not optim.should_switch([1.0, 2.0, 3.0], 9.0, 3)  # needs > n checks


def test_average_is_the_mean_of_params_since_the_switch():
  tx = optim.averaged(optax.chain(optax.clip_by_global_norm(1.0),
                                   optax.sgd(0.5)))
  params = _params()
  state = tx.init(params)
  rng = np.random.default_rng(0)

  def step(params, state):
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape),
                                               jnp.float32), params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  for _ in range(3):  # plain SGD: nothing averaged, eval uses params
    params, state = step(params, state)
  assert int(state.count) == 0
  jax.tree.map(np.testing.assert_array_equal,
               optim.eval_params(params, state), params)
  state = state._replace(averaging=jnp.logical_or(state.averaging, True))
  jax.tree.map(np.testing.assert_array_equal,  # switched, nothing averaged yet
               optim.eval_params(params, state), params)
  seen = []
  for _ in range(5):
    params, state = step(params, state)
    seen.append(params)
  assert int(state.count) == 5
  mean = jax.tree.map(lambda *ps: np.mean(np.stack(ps), axis=0), *seen)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               optim.eval_params(params, state), mean)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               state.average, mean)


def test_make_optimizer_and_config():
  c = configs.base_config()
  assert c.train.optimizer == 'sgd'
  tx, _ = optim.make_optimizer(c.train, 10, 100)
  assert not isinstance(tx.init(_params()), optim.NTASGDState)
  c.train.optimizer = 'ntasgd'
  config_checks.validate(c)
  tx, _ = optim.make_optimizer(c.train, 10, 100)
  assert isinstance(tx.init(_params()), optim.NTASGDState)
  c.train.ntasgd_nonmono = 0
  with pytest.raises(ValueError, match='train.ntasgd_nonmono'):
    config_checks.validate(c)


def test_loop_switches_and_scores_the_average(tmp_path, monkeypatch):
  config = tiny_config(num_steps=20)
  config.train.optimizer, config.train.learning_rate = 'ntasgd', 0.5
  config.train.eval_every_steps = 2
  config.train.ntasgd_nonmono = 1
  # Checks at steps 2, 4, ...: check 4 (step 10) is worse than min(3, 2).
  scripted = iter([3.0, 2.0, 1.0, 1.5, 2.5] + [9.0] * 5)
  real_validate = trainer.score_validation

  def fake_validate(run):
    return dict(real_validate(run), loss=next(scripted))

  monkeypatch.setattr(trainer, 'score_validation', fake_validate)
  trainer.train_and_evaluate(config, str(tmp_path))
  run = trainer.open_stage(config, str(tmp_path))  # the latest checkpoint
  opt = run.state.opt_state
  assert bool(opt.averaging) and int(opt.count) == 10  # steps 11..20
  assert run.book.ntasgd_history == [3.0, 2.0, 1.0, 1.5, 2.5] + [9.0] * 5
  run.checkpointer.close()
  _, state, _ = inference.load_trained(config, str(tmp_path), 'latest')
  jax.tree.map(np.testing.assert_array_equal, state.params,
               jax.device_get(opt.average))


def _torch_asgd_average(iterates, t0=0):
  """torch.optim.ASGD's `ax` (lambd=0) after each of `iterates`: mu starts at
  1, ax = p if mu == 1 else ax + mu * (p - ax), then mu = 1/max(1, k - t0)."""
  ax, mu, out = None, 1.0, []
  for k, p in enumerate(iterates, start=1):
    ax = p if mu == 1 else ax + mu * (p - ax)
    mu = 1.0 / max(1, k - t0)
    out.append(ax)
  return out


def test_average_arithmetic_on_three_steps_against_torch_asgd():
  # Gradients 1, 2, 4 on w = 10 with SGD lr 1: iterates 9, 7, 3.
  tx = optim.averaged(optax.sgd(1.0))
  params = {'w': jnp.float32(10.0)}
  state = tx.init(params)
  state = state._replace(averaging=jnp.logical_or(state.averaging, True))
  iterates, ours = [], []
  for g in (1.0, 2.0, 4.0):
    updates, state = tx.update({'w': jnp.float32(g)}, state, params)
    params = optax.apply_updates(params, updates)
    iterates.append(float(params['w']))
    ours.append(float(state.average['w']))
  assert iterates == [9.0, 7.0, 3.0]
  # Ours: the mean of every iterate since the switch.
  assert ours == pytest.approx([9.0, 8.0, 19.0 / 3.0])
  # torch's ASGD(t0=0): p_1, then p_2, then mean(p_2, p_3): p_1 left out.
  assert _torch_asgd_average(iterates) == pytest.approx([9.0, 7.0, 5.0])
  assert int(state.count) == 3
