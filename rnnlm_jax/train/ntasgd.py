"""NT-ASGD: non-monotonically triggered averaged SGD (Merity et al. 2017).

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

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax


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
