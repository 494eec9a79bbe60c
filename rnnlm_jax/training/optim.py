"""Optimizers and learning-rate schedules (optax), built from `config.train`.

NT-ASGD: non-monotonically triggered averaged SGD (Merity et al. 2017).

Plain SGD until, at a validation check, the loss is worse than the best of the
checks older than the last `n` (train.ntasgd_nonmono; AWD: 5); from then on a
running average of the parameters after every update is kept, and evaluation,
the best checkpoint's scores and sampling use that average.

The average lives in the optimizer state (`averaged(inner)` wraps the whole
optax chain), so it is checkpointed, restored and skipped on NaN steps with
everything else. The switch is the loop's decision (a host-side rule on the
validation history): `switch_if_triggered` flips the state's `averaging` flag,
an array, so flipping it never recompiles the train step.
"""

import dataclasses
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from rnnlm_jax import registry


def step_decay_schedule(base_lr: float, steps_per_epoch: int,
                        decay_start_epoch: int, decay_rate: float) -> optax.Schedule:
  """Zaremba et al. (2014): constant for `decay_start_epoch` epochs, then x decay_rate per epoch.

  Epoch e (0-based) trains at base_lr * decay_rate ** max(e + 1 - decay_start_epoch, 0),
  the TF PTB tutorial's `lr_decay` rule. A closed form rather than
  `piecewise_constant_schedule`, whose dict would need one entry per epoch.
  """

  def schedule(step):
    epoch = step // steps_per_epoch
    return base_lr * decay_rate ** jnp.maximum(epoch + 1 - decay_start_epoch, 0)

  return schedule


# name -> (lr, train config, steps per epoch, total steps) -> optax.Schedule
SCHEDULES = registry.Registry('train.schedule')
SCHEDULES.register('constant', lambda lr, t, per_epoch, total:
                   optax.constant_schedule(lr))
SCHEDULES.register('step_decay', lambda lr, t, per_epoch, total:
                   step_decay_schedule(lr, per_epoch, t.decay_start_epoch,
                                       t.decay_rate))
SCHEDULES.register('cosine', lambda lr, t, per_epoch, total:
                   optax.cosine_decay_schedule(lr, max(total - t.warmup_steps, 1)))
SCHEDULES.register('linear', lambda lr, t, per_epoch, total:
                   optax.linear_schedule(lr, 0.0, max(total - t.warmup_steps, 1)))


def make_schedule(train: ml_collections.ConfigDict, steps_per_epoch: int,
                  total_steps: int) -> optax.Schedule:
  lr = train.learning_rate
  main = SCHEDULES.get(train.schedule)(lr, train, steps_per_epoch, total_steps)
  if train.warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, lr, train.warmup_steps)
  return optax.join_schedules([warmup, main], [train.warmup_steps])


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """An optax optimizer by name; its keyword arguments are the config's
  `train.<registered name>` sub-dict (e.g. train.adam.b2), if it has one.

  averaged: wrap the whole chain in NT-ASGD's parameter average.
  decoupled_decay: train.weight_decay is the optimizer's own (adamw)
    rather than L2 added to the gradient.
  """
  optax_name: str
  averaged: bool = False
  decoupled_decay: bool = False


OPTIMIZERS = registry.Registry('train.optimizer')
OPTIMIZERS.register('sgd', Optimizer('sgd'))
OPTIMIZERS.register('momentum', Optimizer('sgd'))
OPTIMIZERS.register('adam', Optimizer('adam'))
OPTIMIZERS.register('adamw', Optimizer('adamw', decoupled_decay=True))
OPTIMIZERS.register('ntasgd', Optimizer('sgd', averaged=True))


def scale_by_lr_factor() -> optax.GradientTransformationExtraArgs:
  """Multiplies the final updates by the extra argument `lr_scale` ([] f32).

  Last in the chain, so it scales the learning rate exactly whatever the
  optimizer; without the argument (flax's apply_gradients) it is the identity.
  Used by variable BPTT (AWD: lr * len / T).
  """

  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None, *, lr_scale=None, **extra_args):
    del params, extra_args
    if lr_scale is None:
      return updates, state
    return jax.tree.map(lambda u: u * lr_scale, updates), state

  return optax.GradientTransformationExtraArgs(init, update)


def make_optimizer(train: ml_collections.ConfigDict, steps_per_epoch: int,
                   total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(clip by global norm ->) optimizer with the schedule, and the schedule itself.

  'ntasgd' is SGD whose whole chain is wrapped by `averaged` (the loop
  switches the averaging on).
  """
  spec = OPTIMIZERS.get(train.optimizer)
  schedule = make_schedule(train, steps_per_epoch, total_steps)
  kwargs = dict(train.get(train.optimizer, None) or {})
  if spec.decoupled_decay:
    kwargs['weight_decay'] = train.weight_decay
  try:
    opt = getattr(optax, spec.optax_name)(schedule, **kwargs)
  except TypeError as e:  # a key of train.<optimizer> that optax does not take
    raise ValueError(f'train.{train.optimizer}={kwargs}: {e}') from None
  parts = []
  if train.clip_norm > 0:
    parts.append(optax.clip_by_global_norm(train.clip_norm))
  if train.weight_decay > 0 and not spec.decoupled_decay:
    # L2 on the gradient (coupled decay), as SGD-based recipes (AWD-LSTM) use.
    parts.append(optax.add_decayed_weights(train.weight_decay))
  parts.append(opt)
  if train.variable_bptt:
    parts.append(scale_by_lr_factor())
  tx = optax.chain(*parts)
  if spec.averaged:
    tx = averaged(tx)
  return tx, schedule


class NTASGDState(NamedTuple):
  """inner: the wrapped chain's state; averaging: bool []; count: int32 []
  updates averaged so far; average: pytree like params (f32)."""
  inner: optax.OptState
  averaging: jax.Array
  count: jax.Array
  average: optax.Params


def averaged(inner: optax.GradientTransformation
             ) -> optax.GradientTransformationExtraArgs:
  """`inner` (e.g. clip -> decay -> sgd) plus a params average once switched on.

  Needs params in update() (flax's TrainState.apply_gradients passes them).
  While averaging, after the k-th update since the switch,
  average = (p_1 + ... + p_k) / k of the updated params p_i: every iterate
  since the switch, the first included.

  torch.optim.ASGD(t0=0, lambd=0), what the AWD-LSTM code switches to, is
  not exactly this: its weight mu starts at 1 and becomes 1/max(1, k - t0)
  after update k, so its average `ax` is p_1 after update 1, p_2 after
  update 2 (mu is still 1), and (p_2 + ... + p_k) / (k - 1) from then on:
  it leaves out the first iterate after the switch. The two differ by
  (p_1 - mean(p_2..p_k)) / k, which fades as 1/k.
  """

  def init(params):
    return NTASGDState(inner=inner.init(params),
                       averaging=jnp.zeros((), jnp.bool_),
                       count=jnp.zeros((), jnp.int32),
                       average=jax.tree.map(jnp.zeros_like, params))

  inner = optax.with_extra_args_support(inner)

  def update(updates, state, params=None, **extra_args):
    if params is None:
      raise ValueError('NT-ASGD needs params in update()')
    updates, inner_state = inner.update(updates, state.inner, params,
                                        **extra_args)
    new_params = optax.apply_updates(params, updates)
    count = state.count + state.averaging.astype(jnp.int32)
    weight = 1.0 / jnp.maximum(count, 1).astype(jnp.float32)
    average = jax.tree.map(
        lambda a, p: jnp.where(state.averaging, a + (p - a) * weight, a),
        state.average, new_params)
    return updates, NTASGDState(inner_state, state.averaging, count, average)

  return optax.GradientTransformationExtraArgs(init, update)


def should_switch(history: Sequence[float], loss: float, nonmono: int) -> bool:
  """AWD's trigger: more than `nonmono` earlier checks, and `loss` is worse
  than the best of those older than the last `nonmono` of them."""
  return len(history) > nonmono and loss > min(history[:-nonmono])


def switch_if_triggered(opt_state: Any, history: list[float], loss: float,
                        nonmono: int) -> tuple[Any, bool]:
  """One validation check: (opt_state, switched now?); appends `loss`.

  `history` is the list of earlier validation losses (updated in place). Once
  averaging, the state is returned unchanged.
  """
  switched = False
  if not bool(opt_state.averaging) and should_switch(history, loss, nonmono):
    # logical_or keeps the flag's dtype and sharding (no new layout).
    opt_state = opt_state._replace(
        averaging=jnp.logical_or(opt_state.averaging, True))
    switched = True
  history.append(float(loss))
  return opt_state, switched


@jax.jit
def _select(opt_state: NTASGDState, params):
  use = opt_state.averaging & (opt_state.count > 0)
  return jax.tree.map(lambda a, p: jnp.where(use, a, p), opt_state.average, params)


def eval_params(params, opt_state):
  """The params to evaluate / save as 'the model': the average once NT-ASGD
  has averaged at least one update, else `params` (any other optimizer)."""
  if not isinstance(opt_state, NTASGDState):
    return params
  return _select(opt_state, params)


def for_eval(state):
  """A TrainState whose params are eval_params (for scoring/sampling only)."""
  if not isinstance(state.opt_state, NTASGDState):
    return state
  return state.replace(params=eval_params(state.params, state.opt_state))
