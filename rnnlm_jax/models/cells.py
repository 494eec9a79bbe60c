"""Recurrent cells (RNN tanh/relu, LSTM, GRU) behind one layer interface.

Every cell is written as `new_carry = update(x_gates, h_gates, carry)`, where

  x_gates = x_t @ W_ih + b_ih     [B, G*H]   (depends only on the input)
  h_gates = h_{t-1} @ W_hh        [B, G*H]   (the true recurrence)

with the G gate matrices fused into one matrix (G = 1 rnn, 4 lstm, 3 gru).
Because x_gates does not depend on the state, `RecurrentLayer` computes it for
all T steps in ONE [B*T, D] @ [D, G*H] matmul before the scan; only the small
[B, H] @ [H, G*H] matmul stays inside `jax.lax.scan` (whose backward pass
may compute d(W_hh) in one matmul after the loop: rnnlm_jax.models.recurrence).
`cell_step` is the unhoisted reference (both matmuls inside one step) with the
same params.

Parameters of one layer (all f32, whatever the compute dtype):
  kernel_ih [D, G*H], bias_ih [G*H], kernel_hh [H, G*H],
  and for the GRU bias_hn [H] (the hidden bias of the candidate n, which sits
  inside r * (.) and so cannot be folded into bias_ih).
  With two_biases (PyTorch's layout, b_ih and b_hh) also bias_hh: [G*H] for
  the LSTM and the RNNs, [2*H] (r, z) for the GRU, whose b_hh_n is bias_hn.
  It adds to the gates exactly as bias_ih does (same forward, same gradient),
  so it is folded into the hoisted input projection; what it changes is
  training: an SGD step moves the sum bias_ih + bias_hh twice as far, and
  both count in the clipped global gradient norm.

Gate orders: LSTM i, f, g, o (c' = f*c + i*g, h' = o*tanh(c')); GRU r, z, n in
the PyTorch/cuDNN form n = tanh(x_n + r * (h W_hn + b_hn)),
h' = (1 - z) * n + z * h.
"""

import dataclasses
import inspect
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax import registry
from rnnlm_jax.models import ops
from rnnlm_jax.models import recurrence
from rnnlm_jax.models import regularizers

Carry = tuple[jax.Array, ...]
Dtype = Any
# update(x_gates [B, G*H], h_gates [B, G*H], carry, extra params) -> new carry
Update = Callable[[jax.Array, jax.Array, Carry, Any], Carry]


@dataclasses.dataclass(frozen=True)
class CellSpec:
  """One recurrent cell: what `RecurrentLayer` needs to run it.

  Attributes:
    update: the cell equations, (x_gates, h_gates, carry, extra) -> carry;
      carry[0] is the layer's output h_t. One function object per cell, so
      the custom-VJP scan (a static argument) sees the same one every trace.
    num_gates: G, the fused gate blocks of kernel_ih / kernel_hh.
    carry_size: how many [B, H] f32 arrays the carry holds.
    extra_params: names of extra [H] parameters passed to `update` as a dict
      (the GRU's bias_hn), initialised like the biases.
    forget_gate: index of the gate block whose bias gets model.forget_bias.
    layer: a flax module class to use instead of RecurrentLayer, for cells
      that are not a gated recurrence (e.g. parallel-scan recurrences). It
      takes RecurrentLayer's attributes (hidden_size, init_scale,
      forget_bias, dtype, unroll, weight_drop, weight_grad_after_loop) plus
      its own options, and has the same call: (inputs [B, T, D], carry,
      train=) -> (outputs [B, T, H] f32, carry).
    initial_carry: (batch_size, hidden_size, **options) -> zero carry, for
      cells whose carry is not `carry_size` [B, H] arrays; it gets those of
      the cell's options (config `model.<cell>`) that its signature names
      (e.g. the mLSTM's num_heads, which sets its state's shape).
    bias_hh_gates: with two_biases, how many leading gate blocks PyTorch's
      b_hh adds to like b_ih (None: all G; the GRU: 2, as its n-block is
      the extra param bias_hn).
  """
  update: Update | None = None
  num_gates: int = 1
  carry_size: int = 1
  extra_params: tuple[str, ...] = ()
  forget_gate: int | None = None
  layer: Any = None
  initial_carry: Callable[..., Carry] | None = None
  bias_hh_gates: int | None = None


CELLS: registry.Registry[CellSpec] = registry.Registry('model.cell')


def lstm_update(x_gates, h_gates, carry, extra):
  """LSTM, gates i, f, g, o: c' = f*c + i*g, h' = o*tanh(c')."""
  del extra
  _, c = carry
  i, f, g, o = jnp.split(x_gates + h_gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return (jax.nn.sigmoid(o) * jnp.tanh(c), c)


def gru_update(x_gates, h_gates, carry, extra):
  """GRU, gates r, z, n (PyTorch/cuDNN form): n = tanh(x_n + r*(h W_hn + b_hn))."""
  (h,) = carry
  x_r, x_z, x_n = jnp.split(x_gates, 3, axis=-1)
  h_r, h_z, h_n = jnp.split(h_gates, 3, axis=-1)
  r = jax.nn.sigmoid(x_r + h_r)
  z = jax.nn.sigmoid(x_z + h_z)
  n = jnp.tanh(x_n + r * (h_n + extra['bias_hn']))
  return ((1.0 - z) * n + z * h,)


def rnn_tanh_update(x_gates, h_gates, carry, extra):
  del carry, extra
  return (jnp.tanh(x_gates + h_gates),)


def rnn_relu_update(x_gates, h_gates, carry, extra):
  del carry, extra
  return (jax.nn.relu(x_gates + h_gates),)


CELLS.register('lstm', CellSpec(lstm_update, num_gates=4, carry_size=2,
                                forget_gate=1))
CELLS.register('gru', CellSpec(gru_update, num_gates=3,
                               extra_params=('bias_hn',), bias_hh_gates=2))
CELLS.register('rnn_tanh', CellSpec(rnn_tanh_update))
CELLS.register('rnn_relu', CellSpec(rnn_relu_update))


def spec(cell: str) -> CellSpec:
  """The registered CellSpec (one-line ValueError for an unknown name)."""
  return CELLS.get(cell)


def gated_cells() -> tuple[str, ...]:
  """The cells run by RecurrentLayer (those without a layer of their own)."""
  return tuple(name for name, s in CELLS.items() if s.layer is None)


def initial_carry(cell: str, batch_size: int, hidden_size: int,
                  options: Mapping[str, Any] | None = None) -> Carry:
  """Zero state, e.g. (h, c) for the LSTM, (h,) for the GRU; each f32 [B, H].

  options: the cell's own settings; passed to its `initial_carry` function
  where that names them. Distinct buffers per entry, so the carry can be
  donated to a jitted step.
  """
  s = spec(cell)
  if s.initial_carry is not None:
    accepted = inspect.signature(s.initial_carry).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
    kwargs = {k: v for k, v in dict(options or {}).items()
              if takes_all or k in accepted}
    return s.initial_carry(batch_size, hidden_size, **kwargs)
  return tuple(jnp.zeros((batch_size, hidden_size), jnp.float32)
               for _ in range(s.carry_size))


def extra_params(s: CellSpec, params: Mapping[str, jax.Array]) -> dict:
  """The cell's extra params (CellSpec.extra_params) of a layer's params."""
  return {name: params[name] for name in s.extra_params}


def bias_hh_size(s: CellSpec, hidden_size: int) -> int:
  """Length of the bias_hh param (two_biases): its gate blocks times H."""
  gates = s.num_gates if s.bias_hh_gates is None else s.bias_hh_gates
  return gates * hidden_size


def input_bias(params: Mapping[str, jax.Array]) -> jax.Array:
  """The [G*H] bias added to x_gates: bias_ih, plus bias_hh if present
  (zero-padded over the gate blocks it does not cover)."""
  bias = params['bias_ih']
  if 'bias_hh' not in params:
    return bias
  bias_hh = params['bias_hh']
  pad = bias.shape[-1] - bias_hh.shape[-1]
  return bias + jnp.pad(bias_hh, (0, pad)) if pad else bias + bias_hh


def cell_step(
    cell: str, params: Mapping[str, jax.Array], carry: Carry, x_t: jax.Array,
    dtype: Dtype = jnp.float32) -> tuple[Carry, jax.Array]:
  """Unhoisted reference step: both projections computed here, for one t.

  params: one `RecurrentLayer`'s params; x_t: [B, D]; carry: tuple of [B, H].
  Returns (new_carry, h_t [B, H]). Used by tests (and handy for sampling).
  """
  s = spec(cell)
  x_gates = ops.matmul(x_t, params['kernel_ih'], dtype) + input_bias(params)
  h_gates = ops.matmul(carry[0], params['kernel_hh'], dtype)
  new_carry = s.update(x_gates, h_gates, carry, extra_params(s, params))
  return new_carry, new_carry[0]


class LayerSettings(nn.Module):
  """The attributes RecurrentLM gives every recurrent layer, whatever its
  cell (a cell's own layer class subclasses this and adds its options)."""
  hidden_size: int = 200
  init_scale: float = 0.0
  forget_bias: float = 0.0
  dtype: Dtype = jnp.float32
  unroll: int = 1
  weight_drop: float = 0.0
  weight_grad_after_loop: bool = True


class RecurrentLayer(LayerSettings):
  """One recurrent layer of any cell, scanned over time.

  Attributes:
    cell: a registered cell name (CELLS) without a layer of its own.
    hidden_size: H.
    init_scale: > 0: every weight and bias ~ uniform(-s, s); 0: lecun-normal
      input kernel, per-gate orthogonal recurrent kernel, zero biases.
      (PyTorch's RNN default is s = 1/sqrt(hidden_size): RecurrentLM's
      init_scheme='pytorch' passes that.)
    forget_bias: added to the LSTM forget-gate bias at init.
    dtype: matmul operand dtype (float32 or bfloat16; f32 accumulation).
    unroll: `lax.scan` unroll factor.
    weight_drop: DropConnect rate on kernel_hh only (AWD-LSTM's WeightDrop):
      with train=True one mask per call (BPTT window), shared over the T steps;
      needs rngs={'dropout': key}. kernel_ih, biases and eval are untouched.
    weight_grad_after_loop: differentiate the scan with recurrence.scan's
      backward (d(kernel_hh) in one matmul after the loop) instead of
      autodiff of lax.scan (a [H, G*H] accumulator updated every step). Same
      gradients (tested).
    two_biases: also a bias_hh param (PyTorch's b_hh; module docstring),
      initialised like bias_ih but without the forget bias.
  """
  cell: str = 'lstm'
  two_biases: bool = False

  def _bias_ih_init(self, s: CellSpec):
    base = ops.bias_init(self.init_scale)
    h, forget_bias, gate = self.hidden_size, self.forget_bias, s.forget_gate

    def init(key, shape, dtype=jnp.float32):
      bias = base(key, shape, dtype)
      if gate is not None and forget_bias:
        bias = bias.at[gate * h:(gate + 1) * h].add(forget_bias)
      return bias

    return init

  def _params(self, s: CellSpec, input_size: int) -> dict[str, jax.Array]:
    """Creates (or fetches) this layer's params; see the module docstring."""
    g, h, scale = s.num_gates, self.hidden_size, self.init_scale
    params = {
        'kernel_ih': self.param(
            'kernel_ih', ops.weight_init(scale, nn.initializers.lecun_normal()),
            (input_size, g * h)),
        'bias_ih': self.param('bias_ih', self._bias_ih_init(s), (g * h,)),
        'kernel_hh': self.param(
            'kernel_hh',
            ops.weight_init(scale, ops.per_gate(nn.initializers.orthogonal(), g)),
            (h, g * h)),
    }
    if self.two_biases:
      params['bias_hh'] = self.param('bias_hh', ops.bias_init(scale),
                                     (bias_hh_size(s, h),))
    for name in s.extra_params:
      params[name] = self.param(name, ops.bias_init(scale), (h,))
    return params

  @nn.compact
  def __call__(self, inputs: jax.Array, carry: Carry, *,
               train: bool = False) -> tuple[jax.Array, Carry]:
    """inputs [B, T, D], carry tuple of [B, H] -> (outputs [B, T, H], carry).

    Outputs and carry are f32 whatever `dtype` is. `train` only matters with
    weight_drop > 0.
    """
    s = spec(self.cell)
    params = self._params(s, inputs.shape[-1])
    # Time-major so that scan slices the leading axis; transposing the
    # [B, T, D] inputs is cheaper than transposing the [B, T, G*H] gates.
    x_tm = jnp.swapaxes(inputs, 0, 1)  # [T, B, D]
    # The hoisted input projection: one big matmul for all T steps.
    x_gates = ops.matmul(x_tm, params['kernel_ih'], self.dtype)
    x_gates = x_gates + input_bias(params)  # [T, B, G*H] f32
    kernel_hh = params['kernel_hh']
    if train and self.weight_drop > 0:
      # Masked once outside the scan: the same dropped connections at every t.
      kernel_hh = regularizers.drop_weights(
          self.make_rng('dropout'), kernel_hh, self.weight_drop)
    # Cast once here, not T times inside the loop (no-op for f32).
    kernel_hh = kernel_hh.astype(self.dtype)
    carry = tuple(c.astype(jnp.float32) for c in carry)
    scan = recurrence.scan if self.weight_grad_after_loop else recurrence.plain_scan
    outputs, carry = scan(s.update, x_gates, kernel_hh, carry,
                          extra_params(s, params), self.dtype, self.unroll)
    return jnp.swapaxes(outputs, 0, 1), carry  # [B, T, H]
