"""Pure, jit-compiled train and eval steps.

Both take the global batch; under jit with the batch sharded over the mesh's
`data` axis XLA turns the sums into all-reduces, so the same code runs on one
CPU or on every device of a TPU slice.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rnnlm_jax.data import Batch  # inputs, targets int32 [B, T]; mask float32 [B, T]
from rnnlm_jax.train.state import TrainState

Carry = Any  # tuple over layers of tuples of [B, H] float32 arrays


def token_nll(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked per-token negative log-likelihood, nats [B, T]."""
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  return nll * mask


@functools.partial(jax.jit, donate_argnames=('state', 'carry'),
                   static_argnames=('loss_normalization',))
def train_step(state: TrainState, batch: Batch, carry: Carry,
               loss_normalization: str = 'token'):
  """One TBPTT update on one window.

  Args:
    state: the training state (donated: its buffers are reused).
    batch: inputs/targets/mask [B, T].
    carry: the hidden state after the previous window (donated). It enters as
      a constant, so no gradient flows into earlier windows (truncated BPTT).
    loss_normalization: 'token' (mean over real tokens) or 'sequence' (summed
      over time, mean over rows, as Zaremba et al.'s code).

  Returns:
    (new state, carry for the next window, metrics dict of scalars).
  """
  dropout_key = jax.random.fold_in(state.rng, state.step)
  num_tokens = jnp.maximum(batch.mask.sum(), 1.0)
  denominator = (batch.inputs.shape[0] if loss_normalization == 'sequence'
                 else num_tokens)

  def loss_fn(params):
    logits, new_carry = state.apply_fn(
        {'params': params}, batch.inputs, carry, train=True,
        rngs={'dropout': dropout_key})
    total_nll = token_nll(logits, batch.targets, batch.mask).sum()
    return total_nll / denominator, (total_nll, new_carry)

  grads, (total_nll, new_carry) = jax.grad(loss_fn, has_aux=True)(state.params)
  grad_norm = optax.global_norm(grads)
  finite = jnp.isfinite(total_nll) & jnp.isfinite(grad_norm)
  new_state = skip_unless(finite, state.apply_gradients(grads=grads), state)
  new_carry = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                           new_carry, carry)
  metrics = {'loss': total_nll / num_tokens, 'grad_norm': grad_norm,
             'tokens': num_tokens, 'skipped': 1.0 - finite.astype(jnp.float32),
             'nonfinite_run': new_state.nonfinite_run}
  return new_state, new_carry, metrics


def skip_unless(finite: jax.Array, updated: TrainState,
                old: TrainState) -> TrainState:
  """`updated` if the step was finite; else `old` with only the step advanced.

  The step always advances: it is the data position, and the window that
  produced NaN/inf is consumed rather than retried forever. `nonfinite_run`
  counts consecutive skipped steps so the loop can give up on a diverged run.
  """
  keep = lambda new, prev: jnp.where(finite, new, prev)
  return updated.replace(
      params=jax.tree.map(keep, updated.params, old.params),
      opt_state=jax.tree.map(keep, updated.opt_state, old.opt_state),
      nonfinite_run=jnp.where(finite, 0, old.nonfinite_run + 1))


@functools.partial(jax.jit, donate_argnames=('carry',))
def eval_step(state: TrainState, batch: Batch, carry: Carry):
  """Summed NLL (nats) and token count of one window, and the next carry."""
  logits, new_carry = state.apply_fn({'params': state.params}, batch.inputs,
                                     carry, train=False)
  nll = token_nll(logits, batch.targets, batch.mask)
  return nll.sum(), batch.mask.sum(), new_carry
