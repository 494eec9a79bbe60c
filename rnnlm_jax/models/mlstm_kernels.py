"""The mLSTM recurrence (Beck et al. 2024) in two equal forms.

Per head, with k already scaled by 1/sqrt(d_k), log-forget lf_t = log σ(f̃_t):

  m_t = max(lf_t + m_{t-1}, ĩ_t)                       (the stabilizer)
  i_t = exp(ĩ_t - m_t),  f_t = exp(lf_t + m_{t-1} - m_t)
  C_t = f_t C_{t-1} + i_t k_t v_tᵀ     [d_k, d_v]
  n_t = f_t n_{t-1} + i_t k_t          [d_k]
  h̃_t = C_tᵀ q_t / (max(|n_tᵀ q_t|, exp(-m_t)) + ε)  [d_v], ε = 1e-6

(C, n) are the true state times exp(-m_t), so nothing overflows however large
the gates are; the exp(-m_t) floor is the true normalizer's lower bound of 1.

- `recurrent`: the step-by-step form in `lax.scan` (sampling, T=1; the
  reference of the tests).
- `chunkwise`: training. Inside a chunk of L steps the quadratic parallel
  form; across chunks the carried (C, n, m) in `lax.scan`. With
  b_t = lf_1 + ... + lf_t inside the chunk and (C_0, n_0, m_0) the carried
  state, the log-weight of step s in h̃_t is D_ts = b_t - b_s + ĩ_s (s <= t)
  and that of the carried state g_t = b_t + m_0, so m_t = max(g_t, max_s D_ts)
  is exactly the recurrent stabilizer and the two forms are the same
  function (tested: outputs, final state, gradients). A window not divisible
  by L is padded at the end with steps that leave the state unchanged
  (lf = 0, ĩ = -1e30, q = k = v = 0).

Shapes: q, k [B, NH, T, d_k], v [B, NH, T, d_v], ĩ and f̃ [B, NH, T];
state (C [B, NH, d_k, d_v], n [B, NH, d_k], m [B, NH]); everything f32.
"""

import jax
import jax.numpy as jnp

State = tuple[jax.Array, jax.Array, jax.Array]
NEG = -1e30  # log-weight of a padded or masked step (exp -> 0, finite grads)
# Added to the normalizer (as NX-AI/xlstm does): exp(-m_t) alone underflows
# in its square in the backward pass when m_t is large (~50), and a padded
# step's 0 / exp(-m) then gives 0 * inf = NaN gradients.
EPS = 1e-6
# exp(-m_t) is evaluated at max(m_t, MIN_LOG_WEIGHT): m_t >= ĩ_t, and an input
# gate pre-activation below ~-88 makes exp(-m_t) overflow f32 to inf, so that
# h̃ = num / inf = 0 is finite but its gradient is 0 * inf = NaN. Below -80
# the floor is > 5e34 while |n_tᵀ q_t| stays O(|q||k|), so h̃ is ~0 either way.
MIN_LOG_WEIGHT = -80.0


def _normalizer_floor(m: jax.Array) -> jax.Array:
  return jnp.exp(-jnp.maximum(m, MIN_LOG_WEIGHT))


def zero_state(batch: int, num_heads: int, d_k: int, d_v: int) -> State:
  return (jnp.zeros((batch, num_heads, d_k, d_v), jnp.float32),
          jnp.zeros((batch, num_heads, d_k), jnp.float32),
          jnp.zeros((batch, num_heads), jnp.float32))


def _step(state: State, xs) -> tuple[State, jax.Array]:
  c, n, m = state
  q, k, v, i_pre, f_pre = xs  # [B, NH, d] x3, [B, NH] x2
  log_f = jax.nn.log_sigmoid(f_pre)
  m_new = jnp.maximum(log_f + m, i_pre)
  i = jnp.exp(i_pre - m_new)
  f = jnp.exp(log_f + m - m_new)
  c = f[..., None, None] * c + i[..., None, None] * (k[..., :, None] * v[..., None, :])
  n = f[..., None] * n + i[..., None] * k
  num = jnp.einsum('bhk,bhkv->bhv', q, c)
  den = jnp.maximum(jnp.abs(jnp.einsum('bhk,bhk->bh', q, n)),
                    _normalizer_floor(m_new))
  return (c, n, m_new), num / (den + EPS)[..., None]


def recurrent(q, k, v, i_pre, f_pre, state: State, unroll: int = 1
              ) -> tuple[jax.Array, State]:
  """Step by step -> (h̃ [B, NH, T, d_v], last state)."""
  time_major = lambda x: jnp.moveaxis(x, 2, 0)
  xs = tuple(time_major(x) for x in (q, k, v, i_pre, f_pre))
  state, h = jax.lax.scan(_step, state, xs, unroll=unroll)
  return jnp.moveaxis(h, 0, 2), state


def _chunk(state: State, xs) -> tuple[State, jax.Array]:
  """One chunk of L steps in the parallel form, from the carried state."""
  c0, n0, m0 = state
  q, k, v, i_pre, log_f = xs  # [B, NH, L, d] x3, [B, NH, L] x2
  size = q.shape[2]
  b = jnp.cumsum(log_f, axis=-1)  # [B, NH, L]
  causal = jnp.tril(jnp.ones((size, size), bool))
  log_d = jnp.where(causal, b[..., :, None] - b[..., None, :] + i_pre[..., None, :],
                    NEG)  # [B, NH, L(t), L(s)]
  g = b + m0[..., None]  # the carried state's log-weight at each t
  m = jnp.maximum(g, jnp.max(log_d, axis=-1))  # [B, NH, L]
  scores = jnp.einsum('bhtk,bhsk->bhts', q, k) * jnp.exp(log_d - m[..., None])
  w = jnp.exp(g - m)  # [B, NH, L]
  num = (jnp.einsum('bhts,bhsv->bhtv', scores, v)
         + w[..., None] * jnp.einsum('bhtk,bhkv->bhtv', q, c0))
  qn = jnp.sum(scores, axis=-1) + w * jnp.einsum('bhtk,bhk->bht', q, n0)
  h = num / (jnp.maximum(jnp.abs(qn), _normalizer_floor(m)) + EPS)[..., None]
  # The state after the chunk's last step, stabilized by that step's m.
  b_last = b[..., -1]
  log_a = b_last[..., None] - b + i_pre  # [B, NH, L]: weight of k_s v_s^T
  g_last = b_last + m0
  m_last = jnp.maximum(g_last, jnp.max(log_a, axis=-1))
  a = jnp.exp(log_a - m_last[..., None])
  carried = jnp.exp(g_last - m_last)
  c = carried[..., None, None] * c0 + jnp.einsum('bhs,bhsk,bhsv->bhkv', a, k, v)
  n = carried[..., None] * n0 + jnp.einsum('bhs,bhsk->bhk', a, k)
  return (c, n, m_last), h


def chunkwise(q, k, v, i_pre, f_pre, state: State, chunk_size: int
              ) -> tuple[jax.Array, State]:
  """Chunks of `chunk_size` (the last one padded) -> (h̃ [B, NH, T, d_v], state)."""
  steps = q.shape[2]
  size = max(1, min(chunk_size, steps))
  chunks = -(-steps // size)
  pad = chunks * size - steps
  log_f = jax.nn.log_sigmoid(f_pre)
  if pad:
    pad_t = lambda x, value: jnp.pad(
        x, [(0, 0), (0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 3),
        constant_values=value)
    q, k, v = pad_t(q, 0.0), pad_t(k, 0.0), pad_t(v, 0.0)
    i_pre, log_f = pad_t(i_pre, NEG), pad_t(log_f, 0.0)

  def split(x):  # [B, NH, C*L, ...] -> [C, B, NH, L, ...]
    x = x.reshape(x.shape[:2] + (chunks, size) + x.shape[3:])
    return jnp.moveaxis(x, 2, 0)

  xs = tuple(split(x) for x in (q, k, v, i_pre, log_f))
  state, h = jax.lax.scan(_chunk, state, xs)
  h = jnp.moveaxis(h, 0, 2)  # [B, NH, C, L, d_v]
  h = h.reshape(h.shape[:2] + (chunks * size,) + h.shape[4:])
  return h[:, :, :steps], state


BACKENDS = ('chunkwise', 'recurrent')


def mlstm(q, k, v, i_pre, f_pre, state: State, *, backend: str = 'chunkwise',
          chunk_size: int = 64, unroll: int = 1) -> tuple[jax.Array, State]:
  """The chunkwise form for training windows; the step-by-step one for T=1
  (sampling) or backend='recurrent'."""
  if backend == 'recurrent' or q.shape[2] == 1:
    return recurrent(q, k, v, i_pre, f_pre, state, unroll)
  return chunkwise(q, k, v, i_pre, f_pre, state, chunk_size)
