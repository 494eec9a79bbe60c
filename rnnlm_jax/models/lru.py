"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent
Neural Networks for Long Sequences"), as one recurrent layer.

  lambda = exp(-exp(nu_log) + i * exp(theta_log))          [H] complex, |lambda| < 1
  h_t    = lambda * h_{t-1} + gamma * (x_t @ (B_re + i B_im))   h complex [B, H]
  y_t    = Re(h_t @ (C_re + i C_im)) + D x_t
  out_t  = GLU(gelu(y_t)) = (z @ W_1 + c_1) * sigmoid(z @ W_2 + c_2), z = gelu(y_t)

with gamma = exp(gamma_log), initialised to sqrt(1 - |lambda|^2) (the
normalisation that keeps E|h|^2 ~ E|Bx|^2) and trained, as in the reference
(NicolasZucchet/minimal-LRU). nu_log and theta_log come from the ring init:
|lambda| uniform on the ring r_min <= |lambda| <= r_max (by area), phase
uniform in [0, max_phase]. The GLU is the reference's SequenceLayer
nonlinearity (without its norm and residual): without it a stack of LRUs
would be linear in the embeddings. D x is elementwise (D [H]) when the input
width equals H, else a [D_in, H] matrix.

The recurrence is time-invariant in lambda, so x @ B for all T steps is one
matmul and the window is one associative (or sequential) scan of complex64.
The carry stores the complex state as two f32 arrays (h_re, h_im), so
checkpoints and shardings only see real arrays. The state size is H (the
carry is two [B, H] arrays, like every registered cell's).

phase='log' (the paper's) trains theta_log; phase='linear' trains the phase
theta itself (same init, theta = exp(theta_log)). Why the option: the
gradient w.r.t. theta_log carries a factor exp(theta_log), so under SGD with
a global-norm clip a unit whose phase grows gets a gradient that grows with
it, the clip spends the whole update on that unit, and theta_log runs away
until exp overflows (measured: experiments/ablation_cells/README.md). Adam's
per-parameter scaling, the reference's optimizer, does not feed back this way.

Params: nu_log, theta_log (phase='log') or theta (phase='linear'),
gamma_log [H]; B_re, B_im [D_in, H]; C_re, C_im [H, H]; D [H] or [D_in, H];
with glu: glu_kernel [H, 2H], glu_bias [2H].
"""

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.models import linear_recurrence


PHASES = ('log', 'linear')


def nu_log_init(r_min: float, r_max: float):
  """log(-log |lambda|) with |lambda|^2 uniform in [r_min^2, r_max^2]."""
  def init(key, shape, dtype=jnp.float32):
    u = jax.random.uniform(key, shape, dtype)
    return jnp.log(-0.5 * jnp.log(u * (r_max**2 - r_min**2) + r_min**2))
  return init


def theta_log_init(max_phase: float):
  """log(phase) with the phase uniform in [0, max_phase]."""
  def init(key, shape, dtype=jnp.float32):
    u = jax.random.uniform(key, shape, dtype)
    return jnp.log(max_phase * u)
  return init


def scaled_normal(fan_in: int):
  """N(0, 1 / fan_in) (the reference's B uses fan_in 2 D: two real parts)."""
  return nn.initializers.normal(stddev=1.0 / math.sqrt(fan_in))


class LRULayer(linear_recurrence.Layer):
  """One LRU layer: inputs [B, T, D_in] -> outputs [B, T, H] (see module doc).

  Attributes: those of linear_recurrence.Layer, and (config `model.lru`):
    r_min, r_max: the ring of |lambda| at init (0 <= r_min < r_max < 1).
    max_phase: the largest phase of lambda at init (radians).
    glu: apply GLU(gelu(y)) to the output (False: out = y, a linear layer).
    phase: 'log' (train theta_log, the paper's) | 'linear' (train theta).
  forget_bias is unused (no gate).
  """
  r_min: float = 0.9
  r_max: float = 0.999
  max_phase: float = 2 * math.pi
  glu: bool = True
  phase: str = 'log'

  cell_name = 'lru'

  @nn.nowrap
  def lambdas(self, nu_log: jax.Array, theta: jax.Array) -> jax.Array:
    """lambda [H] from nu_log and the phase parameter (theta_log or theta)."""
    phase = jnp.exp(theta) if self.phase == 'log' else theta
    return jnp.exp(-jnp.exp(nu_log) + 1j * phase)

  @nn.compact
  def __call__(self, inputs: jax.Array, carry: cells.Carry, *,
               train: bool = False) -> tuple[jax.Array, cells.Carry]:
    """inputs [B, T, D], carry (h_re, h_im) [B, H] -> (outputs [B, T, H], carry)."""
    del train
    self.check()
    if not 0 <= self.r_min < self.r_max < 1:
      raise ValueError(f'model.lru.r_min={self.r_min!r}, r_max={self.r_max!r} '
                       'must satisfy 0 <= r_min < r_max < 1')
    if self.phase not in PHASES:
      raise ValueError(f'model.lru.phase={self.phase!r} is not one of {PHASES}')
    h, d_in = self.hidden_size, inputs.shape[-1]
    nu_log = self.param('nu_log', nu_log_init(self.r_min, self.r_max), (h,))
    log_init = theta_log_init(self.max_phase)
    theta = (self.param('theta_log', log_init, (h,)) if self.phase == 'log'
             else self.param('theta', lambda k, s: jnp.exp(log_init(k, s)), (h,)))
    gamma_log = self.param(
        'gamma_log', lambda key, shape: jnp.log(jnp.sqrt(
            1 - jnp.abs(self.lambdas(nu_log, theta))**2)), (h,))
    b_re = self.kernel('B_re', (d_in, h), scaled_normal(2 * d_in))
    b_im = self.kernel('B_im', (d_in, h), scaled_normal(2 * d_in))
    c_re = self.kernel('C_re', (h, h), scaled_normal(h))
    c_im = self.kernel('C_im', (h, h), scaled_normal(h))
    skip = self.kernel('D', (h,) if d_in == h else (d_in, h),
                       nn.initializers.normal(1.0) if d_in == h
                       else scaled_normal(d_in))

    x = jnp.swapaxes(inputs, 0, 1)  # [T, B, D]
    gamma = jnp.exp(gamma_log)
    bx = (self.dense(x, b_re) * gamma) + 1j * (self.dense(x, b_im) * gamma)
    h0 = carry[0].astype(jnp.float32) + 1j * carry[1].astype(jnp.float32)
    states, last = linear_recurrence.scan(
        self.lambdas(nu_log, theta), bx, h0, self.scan_method(), self.unroll)
    y = self.dense(states.real, c_re) - self.dense(states.imag, c_im)
    y = y + (x * skip if d_in == h else self.dense(x, skip))
    if self.glu:
      z = self.dense(nn.gelu(y), self.kernel('glu_kernel', (h, 2 * h)),
                     self.bias('glu_bias', 2 * h))
      value, gate = jnp.split(z, 2, axis=-1)
      y = value * jax.nn.sigmoid(gate)
    return jnp.swapaxes(y, 0, 1), (last.real, last.imag)


# The carry: (h_re, h_im), each f32 [B, H] (zeros from cells.initial_carry).
cells.CELLS.register('lru', cells.CellSpec(layer=LRULayer, carry_size=2))
