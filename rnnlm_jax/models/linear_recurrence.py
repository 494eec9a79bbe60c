"""The diagonal linear recurrence h_t = a_t * h_{t-1} + b_t, scanned two ways.

The modern recurrent cells (min_rnn, lru, rglru) compute a_t and b_t from the
inputs alone, so the whole window's recurrence is one first-order linear
recurrence per unit. It is solved either

  'associative': by `jax.lax.associative_scan` over the window with the
    operator (a1, b1) o (a2, b2) = (a1 * a2, a2 * b1 + b2) -- O(log T) depth,
    the parallel form; or
  'sequential': by `jax.lax.scan`, one step per t -- the reference.

The carried state h_0 (truncated BPTT: the previous window's last state) is
folded into the first element, b_1 <- a_1 * h_0 + b_1, so the scan's t-th
prefix is exactly h_t. All arrays are time-major [T, B, N] (real or complex);
the state stays f32 (complex64).

`log_scan` is the same recurrence for positive a, b and h, carried in log
space (minGRU/minLSTM, Feng et al. 2024 appendix B): the associative operator
becomes (la1, lb1) o (la2, lb2) = (la1 + la2, logaddexp(la2 + lb1, lb2)),
which never forms a product of many small a's that underflows. Its
'sequential' form runs in linear space on exp(log a), exp(log b).
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells, ops

METHODS = ('auto', 'associative', 'sequential')


def resolve(method: str) -> str:
  """'auto': 'sequential' on CPU, where it measured 1.1-2.5x faster than the
  associative scan for T = 35..1024 (docs/performance.md), and
  'associative' on accelerators, the parallel form's purpose (not yet
  measured there)."""
  if method != 'auto':
    return method
  return 'sequential' if jax.default_backend() == 'cpu' else 'associative'


def check_method(method: Any, key: str) -> str:
  """One-line error naming the config key for a bad scan method."""
  if method not in METHODS:
    raise ValueError(f'{key}={method!r} is not one of {METHODS}')
  return method


def _combine(left, right):
  a1, b1 = left
  a2, b2 = right
  return a1 * a2, a2 * b1 + b2


def scan(a: jax.Array, b: jax.Array, h0: jax.Array, method: str = 'associative',
         unroll: int = 1) -> tuple[jax.Array, jax.Array]:
  """a, b [T, B, N], h0 [B, N] -> (h [T, B, N], h_T [B, N]).

  a may also be [T, 1, N] or [N]-broadcastable (a time-invariant decay); it
  is broadcast to b's shape first.
  """
  a = jnp.broadcast_to(a, b.shape)
  if method == 'sequential':
    def step(h, ab):
      a_t, b_t = ab
      h = a_t * h + b_t
      return h, h

    last, h = jax.lax.scan(step, h0.astype(b.dtype), (a, b), unroll=unroll)
    return h, last
  b = b.at[0].add(a[0] * h0.astype(b.dtype))
  _, h = jax.lax.associative_scan(_combine, (a, b), axis=0)
  return h, h[-1]


def safe_log(x: jax.Array) -> jax.Array:
  """log x for x >= 0, with log 0 = -inf and a zero (not NaN) gradient at 0."""
  positive = x > 0
  return jnp.where(positive, jnp.log(jnp.where(positive, x, 1.0)), -jnp.inf)


def _log_combine(left, right):
  la1, lb1 = left
  la2, lb2 = right
  return la1 + la2, jnp.logaddexp(la2 + lb1, lb2)


def log_scan(log_a: jax.Array, log_b: jax.Array, h0: jax.Array,
             method: str = 'associative', unroll: int = 1
             ) -> tuple[jax.Array, jax.Array]:
  """log a, log b [T, B, N] f32, h0 [B, N] >= 0 -> (h [T, B, N], h_T [B, N]).

  The recurrence h_t = a_t h_{t-1} + b_t for a, b > 0, h0 >= 0 ('associative'
  in log space; 'sequential' in linear space, see the module docstring).
  """
  if method == 'sequential':
    return scan(jnp.exp(log_a), jnp.exp(log_b), h0, 'sequential', unroll)
  log_b = log_b.at[0].set(jnp.logaddexp(log_a[0] + safe_log(h0), log_b[0]))
  _, log_h = jax.lax.associative_scan(_log_combine, (log_a, log_b), axis=0)
  h = jnp.exp(log_h)
  return h, h[-1]


class Layer(cells.LayerSettings):
  """Base of the linear-recurrence layers: RecurrentLayer's attributes + scan.

  Attributes (as cells.RecurrentLayer; the cell-specific ones in subclasses):
    hidden_size: H. init_scale: > 0: the projections ~ uniform(-s, s) (the
      recurrence's own parameters keep their init); 0: their defaults.
    forget_bias: added to the bias of the gate that keeps the state.
    dtype: matmul operand dtype (f32 accumulation; the state is f32).
    unroll: `lax.scan` unroll of the 'sequential' scan.
    weight_drop: must be 0 (there is no kernel_hh to drop).
    weight_grad_after_loop: unused (no kernel_hh).
    scan: 'auto' (see `resolve`) | 'associative' (parallel,
      jax.lax.associative_scan) | 'sequential' (jax.lax.scan); config
      `model.<cell>.scan`.
  """
  scan: str = 'auto'

  cell_name = 'linear'  # the config key of error messages (model.<cell_name>)

  @nn.nowrap
  def check(self) -> None:
    check_method(self.scan, f'model.{self.cell_name}.scan')
    if self.weight_drop:
      raise ValueError(f'model.weight_drop={self.weight_drop!r} needs a '
                       f"kernel_hh; model.cell={self.cell_name!r} has none (use 0)")

  @nn.nowrap
  def scan_method(self) -> str:
    return resolve(self.scan)

  @nn.nowrap
  def kernel(self, name: str, shape: tuple[int, ...],
             default=nn.initializers.lecun_normal()) -> jax.Array:
    """A projection weight: uniform(-s, s) with init_scale s > 0, else `default`."""
    return self.param(name, ops.weight_init(self.init_scale, default), shape)

  @nn.nowrap
  def bias(self, name: str, size: int, shift: float = 0.0) -> jax.Array:
    base = ops.bias_init(self.init_scale)
    return self.param(name, lambda k, s, d=jnp.float32: base(k, s, d) + shift,
                      (size,))

  @nn.nowrap
  def dense(self, x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None
            ) -> jax.Array:
    """x [..., D] @ kernel [D, N] (+ bias) in `dtype`, f32 result."""
    y = ops.matmul(x, kernel, self.dtype)
    return y if bias is None else y + bias
