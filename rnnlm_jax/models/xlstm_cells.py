"""The xLSTM cells (Beck et al. 2024), sLSTM and mLSTM, as registered cells.

sLSTM (gates i, f, z, o; pre-activations x_t W_ih + b + h_{t-1} W_hh):

  m_t = max(log σ(f̃_t) + m_{t-1}, ĩ_t)      (m_t = ĩ_t while n_{t-1} = 0)
  i_t = exp(ĩ_t - m_t),  f_t = exp(log σ(f̃_t) + m_{t-1} - m_t)
  c_t = f_t c_{t-1} + i_t tanh(z̃_t),  n_t = f_t n_{t-1} + i_t
  h_t = σ(õ_t) c_t / n_t

Its recurrent matrix is block-diagonal per head, so heads mix only through
the input projection. It is a gated recurrence with carry (h, c, n, m), so it
runs in the project's `recurrence.scan` (the hoisted input projection, the
after-loop weight gradient): the layer stores the NH blocks
kernel_hh [NH, d_h, 4, d_h] and expands them to the dense [H, 4H] matrix the
scan multiplies by (zeros off the blocks; their gradient is the blocks' part
of the dense one). The n_{t-1} = 0 rule (NX-AI/xlstm's vanilla sLSTM) makes
n_t >= 1 from the first step on, so c / n never divides by zero.

mLSTM: per head q, k (scaled by 1/sqrt(d_h)), v, scalar gates ĩ, f̃ and an
output gate o = σ(x W_o); h_t = o_t ⊙ h̃_t with h̃ from
rnnlm_jax.models.mlstm_kernels (chunkwise-parallel for training windows,
step by step for T=1). Carry (C [B, NH, d_h, d_h], n [B, NH, d_h], m [B, NH]).

Both forget-gate biases start at linspace(3, 6) over the heads (plus
model.forget_bias), so that early training keeps a long memory.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.models import mlstm_kernels
from rnnlm_jax.models import ops
from rnnlm_jax.models import recurrence
from rnnlm_jax.models import regularizers

Dtype = Any
DEFAULT_HEADS = 4
DEFAULT_CHUNK = 64


def slstm_update(x_gates, h_gates, carry, extra):
  """sLSTM, gates i, f, z, o; carry (h, c, n, m), all [B, H]."""
  del extra
  _, c, n, m = carry
  i_pre, f_pre, z_pre, o_pre = jnp.split(x_gates + h_gates, 4, axis=-1)
  log_f = jax.nn.log_sigmoid(f_pre)
  m_new = jnp.where(n == 0.0, i_pre, jnp.maximum(log_f + m, i_pre))
  i = jnp.exp(i_pre - m_new)
  f = jnp.exp(log_f + m - m_new)
  c = f * c + i * jnp.tanh(z_pre)
  n = f * n + i
  return (jax.nn.sigmoid(o_pre) * c / n, c, n, m_new)


def check_heads(cell: str, num_heads: Any, size: int, what: str) -> int:
  """num_heads must be a positive int dividing `size` (one-line error)."""
  if (not isinstance(num_heads, int) or isinstance(num_heads, bool)
      or num_heads < 1 or size % num_heads):
    raise ValueError(f'model.{cell}.num_heads={num_heads!r} must be a positive '
                     f'int dividing {what}={size}')
  return num_heads


def forget_bias_init(base, num_heads: int, width: int, offset: float):
  """Bias init: `base`, plus linspace(3, 6) over heads (+ offset) on the
  forget-gate slice [start, start + width) of the fused bias; width = the
  gate's units (each head's units get its head's value)."""

  def init(key, shape, start, dtype=jnp.float32):
    bias = base(key, shape, dtype)
    per_head = jnp.linspace(3.0, 6.0, num_heads) + offset
    values = jnp.repeat(per_head, width // num_heads)
    return bias.at[start:start + width].add(values)

  return init


def block_diagonal(blocks: jax.Array) -> jax.Array:
  """[NH, d, G, d] per-head blocks -> the dense [NH*d, G*NH*d] fused matrix
  (gate g's columns g*H .. (g+1)*H, head-major inside)."""
  heads, d, gates, _ = blocks.shape
  eye = jnp.eye(heads, dtype=blocks.dtype)
  dense = jnp.einsum('ab,aigj->aigbj', eye, blocks)
  return dense.reshape(heads * d, gates * heads * d)


def _orthogonal_blocks(key, shape, dtype=jnp.float32):
  heads, d, gates, _ = shape
  keys = jax.random.split(key, heads * gates)
  # One QR per block, not a vmapped (batched) QR: jaxlib's batched CPU QR
  # waits on XLA's intra-op thread pool from inside it, and two of them
  # running at once on a 2-thread pool (the stacked blocks' inits) deadlock.
  init = nn.initializers.orthogonal()
  blocks = jnp.stack([init(k, (d, d), dtype) for k in keys])
  return blocks.reshape(heads, gates, d, d).transpose(0, 2, 1, 3)


class SLSTMLayer(cells.LayerSettings):
  """One sLSTM layer: (inputs [B, T, D], (h, c, n, m)) -> (h [B, T, H], carry).

  Attributes: those of cells.RecurrentLayer, and num_heads (divides H).
  Params: kernel_ih [D, 4H], bias_ih [4H], kernel_hh [NH, H/NH, 4, H/NH].
  """
  num_heads: int = DEFAULT_HEADS

  @nn.compact
  def __call__(self, inputs, carry, *, train=False):
    h, scale = self.hidden_size, self.init_scale
    heads = check_heads('slstm', self.num_heads, h, 'the hidden size')
    kernel_ih = self.param(
        'kernel_ih', ops.weight_init(scale, nn.initializers.lecun_normal()),
        (inputs.shape[-1], 4 * h))
    bias_init = forget_bias_init(ops.bias_init(scale), heads, h, self.forget_bias)
    bias_ih = self.param('bias_ih', lambda k, s: bias_init(k, s, h), (4 * h,))
    blocks = self.param('kernel_hh', ops.weight_init(scale, _orthogonal_blocks),
                        (heads, h // heads, 4, h // heads))
    if train and self.weight_drop > 0:  # one mask per window, as RecurrentLayer
      blocks = regularizers.drop_weights(
          self.make_rng('dropout'), blocks, self.weight_drop)
    x_tm = jnp.swapaxes(inputs, 0, 1)  # [T, B, D]
    x_gates = ops.matmul(x_tm, kernel_ih, self.dtype) + bias_ih  # hoisted
    kernel_hh = block_diagonal(blocks).astype(self.dtype)
    carry = tuple(c.astype(jnp.float32) for c in carry)
    scan = recurrence.scan if self.weight_grad_after_loop else recurrence.plain_scan
    outputs, carry = scan(slstm_update, x_gates, kernel_hh, carry, {},
                          self.dtype, self.unroll)
    return jnp.swapaxes(outputs, 0, 1), carry


def mlstm_heads(x: jax.Array, num_heads: int) -> jax.Array:
  """[B, T, NH*d] -> [B, NH, T, d]."""
  b, t, width = x.shape
  return x.reshape(b, t, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def mlstm_merge(h: jax.Array) -> jax.Array:
  """[B, NH, T, d] -> [B, T, NH*d]."""
  b, heads, t, d = h.shape
  return h.transpose(0, 2, 1, 3).reshape(b, t, heads * d)


def mlstm_initial_carry(batch: int, hidden: int, num_heads: int = DEFAULT_HEADS
                        ) -> mlstm_kernels.State:
  """Zero (C, n, m) of `num_heads` heads of hidden // num_heads units."""
  d = hidden // num_heads
  return mlstm_kernels.zero_state(batch, num_heads, d, d)


def check_chunking(cell: str, backend: Any, chunk_size: Any) -> None:
  if backend not in mlstm_kernels.BACKENDS:
    raise ValueError(f'model.{cell}.backend={backend!r} is not one of '
                     f'{mlstm_kernels.BACKENDS}')
  if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
    raise ValueError(f'model.{cell}.chunk_size={chunk_size!r} must be a '
                     'positive int')


class MLSTMLayer(cells.LayerSettings):
  """One mLSTM layer: (inputs [B, T, D], (C, n, m)) -> (h [B, T, H], carry).

  Attributes: those of cells.RecurrentLayer (weight_drop must be 0: there is
  no recurrent matrix; unroll applies to the step-by-step form), num_heads
  (divides H), chunk_size (steps per parallel chunk), backend ('chunkwise' |
  'recurrent'; T=1 calls always run step by step).
  Params: kernel_ih [D, 4H + 2NH] (q, k, v, o, then ĩ, f̃ per head), bias_ih.
  """
  num_heads: int = DEFAULT_HEADS
  chunk_size: int = DEFAULT_CHUNK
  backend: str = 'chunkwise'

  @nn.compact
  def __call__(self, inputs, carry, *, train=False):
    h, scale = self.hidden_size, self.init_scale
    heads = check_heads('mlstm', self.num_heads, h, 'the hidden size')
    check_chunking('mlstm', self.backend, self.chunk_size)
    if self.weight_drop:
      raise ValueError(f'model.weight_drop={self.weight_drop!r}: the mLSTM has '
                       'no recurrent matrix to drop (use 0)')
    width = 4 * h + 2 * heads
    kernel = self.param(
        'kernel_ih', ops.weight_init(scale, nn.initializers.lecun_normal()),
        (inputs.shape[-1], width))
    bias_init = forget_bias_init(ops.bias_init(scale), heads, heads, self.forget_bias)
    bias = self.param('bias_ih', lambda k, s: bias_init(k, s, 4 * h + heads),
                      (width,))
    x = ops.matmul(inputs, kernel, self.dtype) + bias  # [B, T, W], all steps
    q, k, v, o = (mlstm_heads(x[..., j * h:(j + 1) * h], heads) for j in range(4))
    i_pre = jnp.swapaxes(x[..., 4 * h:4 * h + heads], 1, 2)  # [B, NH, T]
    f_pre = jnp.swapaxes(x[..., 4 * h + heads:], 1, 2)
    k = k / math.sqrt(h // heads)
    carry = tuple(c.astype(jnp.float32) for c in carry)
    h_tilde, carry = mlstm_kernels.mlstm(
        q, k, v, i_pre, f_pre, carry, backend=self.backend,
        chunk_size=self.chunk_size, unroll=self.unroll)
    return mlstm_merge(jax.nn.sigmoid(o) * h_tilde), carry


cells.CELLS.register('slstm', cells.CellSpec(
    slstm_update, num_gates=4, carry_size=4, forget_gate=1, layer=SLSTMLayer))
cells.CELLS.register('mlstm', cells.CellSpec(
    layer=MLSTMLayer, initial_carry=mlstm_initial_carry))
