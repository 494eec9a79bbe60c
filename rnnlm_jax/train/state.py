"""The training state: parameters, optimizer state, step and the dropout key."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
  """flax's TrainState plus the dropout base key and a divergence counter.

  rng: raw uint32 key (not a typed key, so Orbax saves it like any array)
    that per-step dropout keys are folded from.
  nonfinite_run: int32, consecutive steps skipped for a NaN/inf loss or
    gradient norm.
  """
  rng: jax.Array
  nonfinite_run: jax.Array


def create_train_state(model, tx: optax.GradientTransformation, seed: int,
                       batch_size: int, seq_len: int,
                       sharding: jax.sharding.Sharding | None = None) -> TrainState:
  """Initializes parameters from `seed` (same seed, same params on every host).

  One jit for init + optimizer init: op-by-op it would compile dozens of tiny
  programs. `sharding` (e.g. replicated over the mesh) places the result.
  """

  def init(seed_key):
    init_key, dropout_key = jax.random.split(seed_key)
    tokens = jnp.zeros((batch_size, seq_len), jnp.int32)
    carry = model.initial_carry(batch_size)
    params = model.init({'params': init_key}, tokens, carry, train=False)['params']
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                             rng=dropout_key,
                             nonfinite_run=jnp.zeros((), jnp.int32))

  return jax.jit(init, out_shardings=sharding)(jax.random.PRNGKey(seed))


def checkpointable(state: TrainState) -> dict[str, Any]:
  """The array part of the state (what Orbax stores; apply_fn/tx are code)."""
  return {'step': state.step, 'params': state.params,
          'opt_state': state.opt_state, 'rng': state.rng,
          'nonfinite_run': state.nonfinite_run}


def from_checkpointable(state: TrainState, tree: dict[str, Any]) -> TrainState:
  return state.replace(**tree)
