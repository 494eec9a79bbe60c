"""xLSTM blocks and the xLSTM language model (Beck et al. 2024).

  tokens [B, T] -> embedding [B, T, D] -> dropout_embed
    -> blocks, one per letter of `pattern` ('m' mLSTM, 's' sLSTM, 'l' LSTM)
    -> LayerNorm -> dropout_output -> logits [B, T, V] (f32)

mLSTM block (pre up-projection), x [B, T, D], inner width E = proj_factor_m D:
  h = LN(x); (x_m, z) = h W_up [.., 2E]
  x_c = swish(causal_conv_K(x_m))      depthwise, width K; its last K-1 inputs
                                       are carried across windows
  q, k = x_c W_q, x_c W_k;  v = x_m W_v;  ĩ, f̃ = [q, k, v] W_g + b (per head)
  h̃ = headnorm(mLSTM(q, k / sqrt(d), v, ĩ, f̃))   (rnnlm_jax.models.mlstm_kernels)
  x + dropout(((h̃ + skip ⊙ x_c) ⊙ swish(z)) W_down)

sLSTM / LSTM block (post up-projection), F = proj_factor_s D:
  x = x + dropout(headnorm(sLSTM(LN(x))))      (the LSTM: no headnorm)
  x + dropout((gelu(a) ⊙ b) W_down),  (a, b) = LN(x) W_up [.., 2F]

The carry is one tuple per block: mLSTM (C, n, m, conv inputs [B, K-1, E]),
sLSTM (h, c, n, m), LSTM (h, c); all f32, so TBPTT windows and exact resume
work as for the RecurrentLM. `model.num_layers` is not used: the pattern
sets the depth; D is model.hidden_size.

Departures from the paper, for size and simplicity: dense (not block-wise)
q/k/v projections, no causal convolution in front of the sLSTM's gates, and
the mLSTM gate projection starts at zero weights (the gates at their biases,
as NX-AI/xlstm).
"""

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.models import mlstm_kernels
from rnnlm_jax.models import ops
from rnnlm_jax.models import xlstm_cells

Dtype = Any
LETTERS = {'m': 'mLSTM', 's': 'sLSTM', 'l': 'LSTM'}
# config.model.xlstm: key -> default
DEFAULTS = {
    'pattern': 'mmsm',
    'num_heads': 4,  # mLSTM heads (divide E = proj_factor_m * D)
    'slstm_heads': 4,  # sLSTM heads (divide D)
    'chunk_size': 64,  # mLSTM steps per parallel chunk
    'backend': 'chunkwise',  # or 'recurrent' (step by step, also for training)
    'conv_width': 4,
    'proj_factor_m': 2.0,
    'proj_factor_s': 4.0 / 3.0,
}


def inner_width(factor: float, d: int) -> int:
  return max(1, int(round(factor * d)))


def head_norm(x: jax.Array, num_heads: int, scale: jax.Array) -> jax.Array:
  """LayerNorm of each head's units separately (no bias): [B, T, NH*d]."""
  b, t, width = x.shape
  x = x.reshape(b, t, num_heads, width // num_heads)
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.var(x, axis=-1, keepdims=True)
  x = (x - mean) * jax.lax.rsqrt(var + 1e-5)
  return x.reshape(b, t, width) * scale


def _dense(features: int, dtype: Dtype, name: str, **kw) -> nn.Dense:
  return nn.Dense(features, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                  name=name, **kw)


class MLSTMBlock(nn.Module):
  """The mLSTM block; see the module docstring."""
  num_heads: int
  chunk_size: int
  backend: str
  conv_width: int
  proj_factor: float
  forget_bias: float
  dropout: float
  dtype: Dtype
  unroll: int

  @nn.compact
  def __call__(self, x, carry, *, train):
    c, n, m, conv_inputs = carry
    steps, inner, heads = x.shape[1], conv_inputs.shape[-1], self.num_heads
    h = nn.LayerNorm(name='norm')(x)
    x_m, z = jnp.split(_dense(2 * inner, self.dtype, 'up')(h).astype(jnp.float32),
                       2, axis=-1)
    window = jnp.concatenate([conv_inputs.astype(jnp.float32), x_m], axis=1)
    kernel = self.param('conv_kernel', nn.initializers.lecun_normal(in_axis=0),
                        (self.conv_width, inner))
    conv = self.param('conv_bias', nn.initializers.zeros_init(), (inner,))
    for j in range(self.conv_width):  # causal: output t sees inputs t-K+1 .. t
      conv = conv + kernel[j] * window[:, j:j + steps]
    x_c = nn.silu(conv)
    q, k = jnp.split(_dense(2 * inner, self.dtype, 'qk')(x_c).astype(jnp.float32),
                     2, axis=-1)
    v = _dense(inner, self.dtype, 'v')(x_m).astype(jnp.float32)
    bias_init = xlstm_cells.forget_bias_init(
        nn.initializers.zeros_init(), heads, heads, self.forget_bias)
    gates = nn.Dense(2 * heads, kernel_init=nn.initializers.zeros_init(),
                     bias_init=lambda key, shape, dtype=jnp.float32: bias_init(
                         key, shape, heads, dtype),
                     name='gates')(jnp.concatenate([q, k, v], axis=-1))
    i_pre, f_pre = (jnp.swapaxes(g, 1, 2) for g in jnp.split(gates, 2, axis=-1))
    split = lambda a: xlstm_cells.mlstm_heads(a, heads)
    h_tilde, (c, n, m) = mlstm_kernels.mlstm(
        split(q), split(k) / math.sqrt(inner // heads), split(v), i_pre, f_pre,
        (c, n, m), backend=self.backend, chunk_size=self.chunk_size,
        unroll=self.unroll)
    scale = self.param('head_norm', nn.initializers.ones_init(), (inner,))
    h_tilde = head_norm(xlstm_cells.mlstm_merge(h_tilde), heads, scale)
    skip = self.param('skip', nn.initializers.ones_init(), (inner,))
    y = (h_tilde + skip * x_c) * nn.silu(z)
    y = _dense(x.shape[-1], self.dtype, 'down')(y).astype(jnp.float32)
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    new_inputs = window[:, window.shape[1] - (self.conv_width - 1):]
    return x + y, (c, n, m, new_inputs)


class PostUpBlock(nn.Module):
  """The sLSTM block ('s'), or the same with an LSTM ('l')."""
  cell: str  # 'slstm' | 'lstm'
  num_heads: int
  proj_factor: float
  forget_bias: float
  dropout: float
  dtype: Dtype
  unroll: int
  weight_grad_after_loop: bool

  @nn.compact
  def __call__(self, x, carry, *, train):
    d = x.shape[-1]
    common = dict(hidden_size=d, forget_bias=self.forget_bias, dtype=self.dtype,
                  unroll=self.unroll, name='cell',
                  weight_grad_after_loop=self.weight_grad_after_loop)
    h = nn.LayerNorm(name='norm')(x)
    if self.cell == 'slstm':
      y, carry = xlstm_cells.SLSTMLayer(num_heads=self.num_heads, **common)(
          h, carry, train=train)
      y = head_norm(y, self.num_heads,
                    self.param('head_norm', nn.initializers.ones_init(), (d,)))
    else:
      y, carry = cells.RecurrentLayer(cell='lstm', **common)(h, carry, train=train)
    x = x + nn.Dropout(self.dropout, deterministic=not train)(y)
    h = nn.LayerNorm(name='mlp_norm')(x)
    inner = inner_width(self.proj_factor, d)
    a, b = jnp.split(_dense(2 * inner, self.dtype, 'up')(h).astype(jnp.float32),
                     2, axis=-1)
    y = _dense(d, self.dtype, 'down')(nn.gelu(a) * b).astype(jnp.float32)
    return x + nn.Dropout(self.dropout, deterministic=not train)(y), carry


class XLSTMLM(nn.Module):
  """The xLSTM LM; the call/carry interface of RecurrentLM.

  Attributes: vocab_size V; hidden_size D; the config.model.xlstm options
  (DEFAULTS); tie_embeddings; dropout_embed, dropout (each block's residual
  branches), dropout_output; forget_bias (added to the gates' init); dtype
  (matmul operands; params, state, residual stream, logits f32); unroll and
  weight_grad_after_loop (the sLSTM/LSTM scans).
  Params: 'embedding' [V, D], 'block_{j}', 'final_norm', 'output_bias' [V]
  and untied 'output_kernel' [V, D].
  """
  vocab_size: int
  hidden_size: int = 128
  pattern: str = DEFAULTS['pattern']
  num_heads: int = DEFAULTS['num_heads']
  slstm_heads: int = DEFAULTS['slstm_heads']
  chunk_size: int = DEFAULTS['chunk_size']
  backend: str = DEFAULTS['backend']
  conv_width: int = DEFAULTS['conv_width']
  proj_factor_m: float = DEFAULTS['proj_factor_m']
  proj_factor_s: float = DEFAULTS['proj_factor_s']
  tie_embeddings: bool = False
  dropout_embed: float = 0.0
  dropout: float = 0.0
  dropout_output: float = 0.0
  forget_bias: float = 0.0
  dtype: Dtype = jnp.float32
  unroll: int = 1
  weight_grad_after_loop: bool = True

  @nn.nowrap
  def initial_carry(self, batch_size: int) -> tuple:
    """Zero state of every block (f32); needs no params."""
    d = self.hidden_size
    zeros = lambda *shape: jnp.zeros((batch_size,) + shape, jnp.float32)
    carry = []
    for letter in self.pattern:
      if letter == 'm':
        inner = inner_width(self.proj_factor_m, d)
        state = mlstm_kernels.zero_state(batch_size, self.num_heads,
                                         inner // self.num_heads,
                                         inner // self.num_heads)
        carry.append(state + (zeros(self.conv_width - 1, inner),))
      else:
        carry.append(tuple(zeros(d) for _ in range(4 if letter == 's' else 2)))
    return tuple(carry)

  @nn.compact
  def __call__(self, tokens, carry, *, train: bool):
    """tokens int [B, T], carry -> (logits [B, T, V] f32, new carry)."""
    if len(carry) != len(self.pattern):
      raise ValueError(f'carry has {len(carry)} blocks, the model has '
                       f'{len(self.pattern)} ({self.pattern!r})')
    embedding = self.param('embedding', nn.initializers.normal(0.02),
                           (self.vocab_size, self.hidden_size))
    x = jnp.take(embedding, tokens, axis=0)
    x = nn.Dropout(self.dropout_embed, deterministic=not train)(x)
    new_carry = []
    for j, letter in enumerate(self.pattern):
      x, block_carry = self._block(letter, f'block_{j}')(x, carry[j], train=train)
      new_carry.append(block_carry)
    x = nn.LayerNorm(name='final_norm')(x)
    x = nn.Dropout(self.dropout_output, deterministic=not train)(x)
    if self.tie_embeddings:
      kernel = embedding
    else:
      kernel = self.param('output_kernel',
                          nn.initializers.lecun_normal(in_axis=-1, out_axis=-2),
                          (self.vocab_size, self.hidden_size))
    bias = self.param('output_bias', nn.initializers.zeros_init(), (self.vocab_size,))
    rows = x.reshape(-1, x.shape[-1])
    logits = ops.matmul_nt(rows, kernel, self.dtype) + bias
    return logits.reshape(*x.shape[:-1], self.vocab_size), tuple(new_carry)

  @nn.nowrap
  def _block(self, letter: str, name: str) -> nn.Module:
    shared = dict(forget_bias=self.forget_bias, dropout=self.dropout,
                  dtype=self.dtype, unroll=self.unroll, name=name)
    if letter == 'm':
      return MLSTMBlock(num_heads=self.num_heads, chunk_size=self.chunk_size,
                        backend=self.backend, conv_width=self.conv_width,
                        proj_factor=self.proj_factor_m, **shared)
    return PostUpBlock(cell='slstm' if letter == 's' else 'lstm',
                       num_heads=self.slstm_heads, proj_factor=self.proj_factor_s,
                       weight_grad_after_loop=self.weight_grad_after_loop, **shared)


def validate_options(options: Mapping[str, Any] | None, d_model: int
                     ) -> dict[str, Any]:
  """config.model.xlstm (a dict or None) -> XLSTMLM fields, checked.

  One-line ValueErrors name the key, e.g. model.xlstm.pattern='mx'.
  """
  options = dict(options or {})
  unknown = sorted(set(options) - set(DEFAULTS))
  if unknown:
    raise ValueError(f'model.xlstm: unknown keys {unknown}; known: {sorted(DEFAULTS)}')
  o = {**DEFAULTS, **options}

  def fail(key, requirement):
    raise ValueError(f'model.xlstm.{key}={o[key]!r} {requirement}')

  is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
  pattern = o['pattern']
  if not isinstance(pattern, str) or not pattern or set(pattern) - set(LETTERS):
    fail('pattern', f'must be a non-empty string of {sorted(LETTERS)} '
         "(m: mLSTM, s: sLSTM, l: LSTM blocks)")
  for key in ('proj_factor_m', 'proj_factor_s'):
    if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or o[key] <= 0:
      fail(key, 'must be a number > 0')
    o[key] = float(o[key])
  inner = inner_width(o['proj_factor_m'], d_model)
  for key, letter, size, what in (
      ('num_heads', 'm', inner, 'proj_factor_m * model.hidden_size'),
      ('slstm_heads', 's', d_model, 'model.hidden_size')):
    if letter in pattern and (not is_int(o[key]) or o[key] < 1 or size % o[key]):
      fail(key, f'must be a positive int dividing {what}={size}')
  if not is_int(o['chunk_size']) or o['chunk_size'] < 1:
    fail('chunk_size', 'must be a positive int')
  if not is_int(o['conv_width']) or o['conv_width'] < 2:
    fail('conv_width', 'must be an int >= 2')
  if o['backend'] not in mlstm_kernels.BACKENDS:
    fail('backend', f'is not one of {mlstm_kernels.BACKENDS}')
  return o
