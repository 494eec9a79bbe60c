"""The scanned recurrence with a hand-written backward pass.

Autodiff of `lax.scan` accumulates the recurrent weight gradient inside the
backward loop: at every step it adds h_{t-1}^T @ d(h_gates_t) [H, G*H] into
a carried accumulator, i.e. one read and one write of the whole matrix per
step (2 x 6.8 MB per step for the Zaremba medium shape, 36 MB for large),
and T small K=B matmuls. Here the backward loop only computes the per-step
gate gradients; the weight gradient is ONE matmul over all steps after it:

  d(kernel_hh) = H_prev^T @ dG,  H_prev [T*B, H], dG [T*B, G*H]

(what cuDNN and PyTorch's RNNs do). d(x_gates) is dG's counterpart and flows
to the hoisted input projection, whose gradient is already one matmul.

The cell's non-linear part is differentiated by jax.vjp of `update` at each
step (recomputed from the saved pre-activations: elementwise, cheap), so one
backward serves every cell.
"""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from rnnlm_jax.models import ops

Carry = tuple[jax.Array, ...]
# update(x_gates_t [B, G*H], h_gates_t [B, G*H], carry, extra) -> new carry;
# `extra` holds the cell's other params (GRU: bias_hn), differentiated too.
Update = Callable[[jax.Array, jax.Array, Carry, Any], Carry]


def scan(update: Update, x_gates: jax.Array, kernel_hh: jax.Array,
         carry: Carry, extra: Any, dtype: Any, unroll: int
         ) -> tuple[jax.Array, Carry]:
  """x_gates [T, B, G*H] f32, kernel_hh [H, G*H] (in `dtype`), carry tuple of
  [B, H] f32 -> (outputs h_t [T, B, H] f32, last carry)."""
  return _scan(update, dtype, unroll, x_gates, kernel_hh, carry, extra)


def _cell(update, kernel_hh, extra, dtype, carry, x_gates_t):
  """One step: (new carry, the recurrent pre-activations h_gates [B, G*H])."""
  h_gates = ops.matmul(carry[0], kernel_hh, dtype)
  return update(x_gates_t, h_gates, carry, extra), h_gates


def _forward(update, dtype, unroll, x_gates, kernel_hh, carry, extra):
  """The scan, also returning what the backward pass needs: the carry
  before each step and the recurrent pre-activations h_{t-1} @ W."""

  def step(carry, x_gates_t):
    new_carry, h_gates = _cell(update, kernel_hh, extra, dtype, carry, x_gates_t)
    return new_carry, (new_carry[0], carry, h_gates)

  last, (outputs, previous, h_gates) = jax.lax.scan(
      step, carry, x_gates, unroll=unroll)
  return last, outputs, previous, h_gates


def plain_scan(update: Update, x_gates: jax.Array, kernel_hh: jax.Array,
               carry: Carry, extra: Any, dtype: Any, unroll: int
               ) -> tuple[jax.Array, Carry]:
  """The same recurrence as `scan`, left to autodiff (which accumulates
  d(kernel_hh) in the backward loop)."""

  def step(carry, x_gates_t):
    carry, _ = _cell(update, kernel_hh, extra, dtype, carry, x_gates_t)
    return carry, carry[0]

  last, outputs = jax.lax.scan(step, carry, x_gates, unroll=unroll)
  return outputs, last


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _scan(update, dtype, unroll, x_gates, kernel_hh, carry, extra):
  """Without differentiation (evaluation, sampling): the plain scan."""
  return plain_scan(update, x_gates, kernel_hh, carry, extra, dtype, unroll)


def _scan_fwd(update, dtype, unroll, x_gates, kernel_hh, carry, extra):
  last, outputs, previous, h_gates = _forward(
      update, dtype, unroll, x_gates, kernel_hh, carry, extra)
  return (outputs, last), (x_gates, kernel_hh, previous, h_gates, extra)


def _scan_bwd(update, dtype, unroll, residuals, cotangents):
  x_gates, kernel_hh, previous, h_gates, extra = residuals
  d_outputs, d_last = cotangents
  kernel_t = kernel_hh.T  # [G*H, H], transposed once, not per step

  def step(state, inputs):
    d_carry, d_extra = state
    d_out_t, x_gates_t, h_gates_t, carry_t = inputs
    d_carry = (d_carry[0] + d_out_t,) + tuple(d_carry[1:])
    _, pullback = jax.vjp(update, x_gates_t, h_gates_t, carry_t, extra)
    d_x_t, d_h_t, d_prev, d_extra_t = pullback(d_carry)
    # h_{t-1} reached h_gates_t through kernel_hh: d(h_{t-1}) += dG_t W^T.
    d_prev = (d_prev[0] + ops.matmul(d_h_t, kernel_t, dtype),) + tuple(d_prev[1:])
    d_extra = jax.tree.map(jnp.add, d_extra, d_extra_t)
    return (d_prev, d_extra), (d_x_t, d_h_t)

  zero_extra = jax.tree.map(jnp.zeros_like, extra)
  (d_carry, d_extra), (d_x_gates, d_h_gates) = jax.lax.scan(
      step, (d_last, zero_extra), (d_outputs, x_gates, h_gates, previous),
      reverse=True, unroll=unroll)
  # The weight gradient, once: sum_t h_{t-1}^T dG_t over all T*B rows.
  h_prev = previous[0].reshape(-1, previous[0].shape[-1])  # [T*B, H]
  d_rows = d_h_gates.reshape(-1, d_h_gates.shape[-1])  # [T*B, G*H]
  d_kernel = ops.matmul(h_prev.T, d_rows, dtype).astype(kernel_hh.dtype)
  return d_x_gates, d_kernel, d_carry, d_extra


_scan.defvjp(_scan_fwd, _scan_bwd)
