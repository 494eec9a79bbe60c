"""Griffin's recurrent block with the RG-LRU (De et al. 2024; reference
google-deepmind/recurrentgemma, jax/modules.py RecurrentBlock and jax/layers.py
RGLRU, Conv1D), as one recurrent layer:

  [x~, y~] = x_t @ kernel_in + bias_in                     (D_in -> 2H)
  u_t      = sum_k conv_w[k] * x~_{t-3+k} + conv_b         (causal, width 4)
  r_t      = sigmoid(BD_a(u_t)),  i_t = sigmoid(BD_x(u_t))  (block-diagonal, per head)
  log a_t  = -8 * r_t * softplus(a_param)
  h_t      = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * u_t)
  out_t    = (h_t * gelu(y~_t)) @ kernel_out + bias_out     (H -> H)

BD(u) splits u [.., H] into num_heads blocks and applies one [H/n, H/n]
matrix (and bias) to each. a_param is initialised so that
a = exp(-softplus(a_param)) has a^2 uniform in [min_rad^2, max_rad^2] =
[0.9^2, 0.999^2] (the reference's ring init); a_t = a^(8 r_t). The sqrt's
gradient is bounded (at 1000, as the reference) where 1 - a_t^2 -> 0.

Carry: (h, x~_{t-2}, x~_{t-1}, x~_t), each [B, H] f32: the state and the
last 3 inputs of the convolution, so that the convolution, like the
recurrence, continues across BPTT windows and one-token calls. The conv width
is fixed at 4 (the reference's default; the carry's size is part of the
cell's registry entry).

Params: kernel_in [D_in, 2H], bias_in [2H], conv_w [4, H], conv_b [H],
gate_a_w, gate_x_w [n, H/n, H/n], gate_a_b, gate_x_b [H], a_param [H],
kernel_out [H, H], bias_out [H]; with input_norm, norm_scale [D_in].
"""

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.models import linear_recurrence

CONV_WIDTH = 4
GATE_C = 8.0  # the constant c of log a_t = -c r_t softplus(Lambda)
MAX_SQRT_GRADIENT = 1000.0


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def sqrt_bounded_grad(x: jax.Array, max_gradient: float) -> jax.Array:
  """sqrt(x), whose gradient is at most `max_gradient` (x near 0)."""
  del max_gradient
  return jnp.sqrt(x)


def _sqrt_fwd(x, max_gradient):
  del max_gradient
  return jnp.sqrt(x), x


def _sqrt_bwd(max_gradient, x, g):
  x = jnp.maximum(x, 1.0 / (4.0 * max_gradient**2))
  return (g * 0.5 / jnp.sqrt(x),)


sqrt_bounded_grad.defvjp(_sqrt_fwd, _sqrt_bwd)


def a_param_init(min_rad: float, max_rad: float):
  """softplus^-1(-log a) with a^2 uniform in [min_rad^2, max_rad^2]."""
  def init(key, shape, dtype=jnp.float32):
    u = jax.random.uniform(key, shape, dtype)
    log_a = 0.5 * jnp.log(u * (max_rad**2 - min_rad**2) + min_rad**2 + 1e-8)
    return jnp.log(jnp.expm1(-log_a))
  return init


def rms_norm(x: jax.Array, scale: jax.Array, eps: float = 1e-6) -> jax.Array:
  """x [..., D] / rms(x) * (1 + scale [D]), in f32 (the reference's RMSNorm)."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * (1 + scale)


class RGLRULayer(linear_recurrence.Layer):
  """Griffin's recurrent block (see the module docstring).

  Attributes: those of linear_recurrence.Layer, and (config `model.rglru`):
    num_heads: blocks of the block-diagonal gates (must divide H).
    min_rad, max_rad: the ring of a at init.
    input_norm: RMS-normalize the layer's input first (a learned scale per
      feature, the reference's RMSNorm), as Griffin's residual block does
      before its recurrent block. The block is bilinear in its input
      (the recurrence times gelu(y~)), so in a stack without that norm a
      small input shrinks quadratically from layer to layer.
  forget_bias is unused (the decay is set by the ring init); init_scale
  applies to kernel_in, kernel_out and their biases (the conv, gates and
  a_param keep the reference's init).
  """
  num_heads: int = 4
  min_rad: float = 0.9
  max_rad: float = 0.999
  input_norm: bool = False

  cell_name = 'rglru'

  @nn.nowrap
  def _block_diagonal(self, name: str, u: jax.Array) -> jax.Array:
    """u [..., H] -> [..., H], one [H/n, H/n] matrix and bias per head."""
    n, h = self.num_heads, self.hidden_size
    w = self.param(f'{name}_w', nn.initializers.variance_scaling(
        1.0, 'fan_in', 'normal', in_axis=1, out_axis=2), (n, h // n, h // n))
    b = self.param(f'{name}_b', nn.initializers.zeros_init(), (h,))
    blocks = u.reshape(*u.shape[:-1], n, h // n)
    y = jnp.einsum('...ni,nij->...nj', blocks.astype(self.dtype),
                   w.astype(self.dtype), preferred_element_type=jnp.float32)
    return y.reshape(u.shape) + b

  @nn.nowrap
  def _conv(self, x: jax.Array, history: cells.Carry
            ) -> tuple[jax.Array, cells.Carry]:
    """Causal conv over time: x [T, B, H], history: the 3 inputs before x,
    oldest first, each [B, H] -> (u [T, B, H], the last 3 inputs)."""
    h, t = self.hidden_size, x.shape[0]
    w = self.param('conv_w', nn.initializers.variance_scaling(
        0.01, 'fan_in', 'normal', in_axis=0, out_axis=1), (CONV_WIDTH, h))
    b = self.param('conv_b', nn.initializers.zeros_init(), (h,))
    padded = jnp.concatenate(
        [jnp.stack(history).astype(jnp.float32), x], axis=0)  # [T+3, B, H]
    u = sum(padded[k:k + t] * w[k] for k in range(CONV_WIDTH)) + b
    return u, tuple(padded[-(CONV_WIDTH - 1):])

  @nn.compact
  def __call__(self, inputs: jax.Array, carry: cells.Carry, *,
               train: bool = False) -> tuple[jax.Array, cells.Carry]:
    """inputs [B, T, D], carry (h, 3 conv inputs), each [B, H] ->
    (outputs [B, T, H] f32, carry)."""
    del train
    self.check()
    h = self.hidden_size
    if self.num_heads < 1 or h % self.num_heads:
      raise ValueError(f'model.rglru.num_heads={self.num_heads!r} must divide '
                       f'the layer width {h}')
    if self.input_norm:
      inputs = rms_norm(inputs, self.param(
          'norm_scale', nn.initializers.zeros_init(), (inputs.shape[-1],)))
    kernel_in = self.kernel('kernel_in', (inputs.shape[-1], 2 * h))
    x, y = jnp.split(self.dense(jnp.swapaxes(inputs, 0, 1), kernel_in,
                                self.bias('bias_in', 2 * h)), 2, axis=-1)
    h0, *history = carry
    u, history = self._conv(x, history)
    r = jax.nn.sigmoid(self._block_diagonal('gate_a', u))
    i = jax.nn.sigmoid(self._block_diagonal('gate_x', u))
    a_param = self.param('a_param', a_param_init(self.min_rad, self.max_rad), (h,))
    log_a = -GATE_C * r * jax.nn.softplus(a_param)
    b = sqrt_bounded_grad(1.0 - jnp.exp(2.0 * log_a), MAX_SQRT_GRADIENT) * (i * u)
    states, last = linear_recurrence.scan(
        jnp.exp(log_a), b, h0.astype(jnp.float32), self.scan_method(), self.unroll)
    out = self.dense(states * nn.gelu(y), self.kernel('kernel_out', (h, h)),
                     self.bias('bias_out', h))
    return jnp.swapaxes(out, 0, 1), (last, *history)


cells.CELLS.register('rglru', cells.CellSpec(layer=RGLRULayer,
                                             carry_size=CONV_WIDTH))
