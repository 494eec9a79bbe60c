"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Gates and candidate depend on the input only, so the recurrence is linear in
h and a whole window is one parallel scan (linear_recurrence.log_scan, in
log space, appendix B.3):

  minGRU:  z = sigmoid(k_z),  h~ = g(k_h),
           h_t = (1 - z_t) * h_{t-1} + z_t * h~_t
  minLSTM: f = sigmoid(k_f), i = sigmoid(k_i), f' = f / (f + i),
           i' = i / (f + i),  h~ = g(k_h),
           h_t = f'_t * h_{t-1} + i'_t * h~_t

with [k_h, k_z] (or [k_h, k_f, k_i]) = x_t @ kernel_ih + bias_ih and
g(x) = x + 0.5 for x >= 0, sigmoid(x) otherwise (> 0, so h stays positive
and log h exists). In log space: log(1 - z) = -softplus(k_z),
log z = -softplus(-k_z), log g(x) = log(relu(x) + 0.5) or -softplus(-x);
for minLSTM, with d = softplus(-k_f) - softplus(-k_i): log f' = -softplus(d),
log i' = -softplus(-d).

The carried state enters the log-space scan as log h_0 (not log g(h_0): the
bug of an early reference implementation whose parallel and sequential paths
then disagreed given an initial state; tests check they agree here).

Params: kernel_ih [D, G*H] (G = 2: h, z; G = 3: h, f, i), bias_ih [G*H].
Carry: (h [B, H],), f32, h >= 0.
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.models import linear_recurrence
from rnnlm_jax.models import ops


def g(x: jax.Array) -> jax.Array:
  """The positive candidate activation: x + 0.5 (x >= 0), sigmoid(x) (x < 0)."""
  return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x: jax.Array) -> jax.Array:
  """log g(x), without forming g(x) for very negative x."""
  return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


class _MinLayer(linear_recurrence.Layer):
  """Shared body: one hoisted projection, then the scan over the window."""
  num_gates = 2

  @nn.nowrap
  def _bias_shift(self) -> jax.Array:
    raise NotImplementedError

  @nn.nowrap
  def coefficients(self, k: jax.Array, log: bool):
    """Projected gates k [T, B, G*H] -> (a, b) or (log a, log b) [T, B, H]."""
    raise NotImplementedError

  @nn.compact
  def __call__(self, inputs: jax.Array, carry: cells.Carry, *,
               train: bool = False) -> tuple[jax.Array, cells.Carry]:
    """inputs [B, T, D], carry (h [B, H],) -> (outputs [B, T, H] f32, carry)."""
    del train  # no dropout inside the layer
    self.check()
    h, gates = self.hidden_size, self.num_gates
    kernel = self.kernel('kernel_ih', (inputs.shape[-1], gates * h))
    bias = self.param('bias_ih', self._bias_init(), (gates * h,))
    k = self.dense(jnp.swapaxes(inputs, 0, 1), kernel, bias)  # [T, B, G*H]
    (h0,) = carry
    h0 = h0.astype(jnp.float32)
    if self.scan_method() == 'associative':
      log_a, log_b = self.coefficients(k, log=True)
      out, last = linear_recurrence.log_scan(log_a, log_b, h0, 'associative')
    else:
      a, b = self.coefficients(k, log=False)
      out, last = linear_recurrence.scan(a, b, h0, 'sequential', self.unroll)
    return jnp.swapaxes(out, 0, 1), (last,)

  @nn.nowrap
  def _bias_init(self):
    base, h, shift = ops.bias_init(self.init_scale), self.hidden_size, self._bias_shift()

    def init(key, shape, dtype=jnp.float32):
      return base(key, shape, dtype) + jnp.repeat(shift, h)  # per gate block

    return init


class MinGRULayer(_MinLayer):
  """minGRU: h_t = (1 - z_t) h_{t-1} + z_t g(k_h), z = sigmoid(k_z).

  Attributes: those of linear_recurrence.Layer (scan: 'associative' runs in
  log space). forget_bias is subtracted from the z bias at init (a larger
  value keeps more of h_{t-1}).
  """
  cell_name = 'mingru'
  num_gates = 2

  @nn.nowrap
  def _bias_shift(self):
    return jnp.array([0.0, -self.forget_bias], jnp.float32)

  @nn.nowrap
  def coefficients(self, k, log):
    k_h, k_z = jnp.split(k, 2, axis=-1)
    if log:
      return -jax.nn.softplus(k_z), -jax.nn.softplus(-k_z) + log_g(k_h)
    z = jax.nn.sigmoid(k_z)
    return 1.0 - z, z * g(k_h)


class MinLSTMLayer(_MinLayer):
  """minLSTM: h_t = f'_t h_{t-1} + i'_t g(k_h), f', i' = f, i / (f + i).

  Attributes: those of linear_recurrence.Layer (scan: 'associative' runs in
  log space). forget_bias is added to the f bias at init.
  """
  cell_name = 'minlstm'
  num_gates = 3

  @nn.nowrap
  def _bias_shift(self):
    return jnp.array([0.0, self.forget_bias, 0.0], jnp.float32)

  @nn.nowrap
  def coefficients(self, k, log):
    k_h, k_f, k_i = jnp.split(k, 3, axis=-1)
    if log:
      d = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)
      return -jax.nn.softplus(d), -jax.nn.softplus(-d) + log_g(k_h)
    # f / (f + i) = sigmoid(-d): no 0 / 0 when both sigmoids underflow.
    d = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)
    return jax.nn.sigmoid(-d), jax.nn.sigmoid(d) * g(k_h)


cells.CELLS.register('mingru', cells.CellSpec(layer=MinGRULayer))
cells.CELLS.register('minlstm', cells.CellSpec(layer=MinLSTMLayer))
