"""Attention over encoder outputs for the encoder-decoder (models.seq2seq).

Kinds (query q = the decoder state s_{t-1} [B, Dq], values v = encoder
outputs [B, S, Dk]):

  'additive' (Bahdanau et al. 2015): score_s = w . tanh(W_q q + W_k v_s + b)
  'general'  (Luong et al. 2015):    score_s = q . (W v_s)
  'dot'      (Luong et al. 2015):    score_s = q . v_s        (needs Dq == Dk)
  'none'     (Cho et al. 2014): no attention; the caller uses the encoder
             summary as the context of every step (weights are all zero).

Everything that does not depend on the query is computed once per sequence,
outside the decoder's scan: `precompute_keys` (W_k v + b for 'additive',
W v for 'general'). Inside the scan only the [B, Dq] query side and the
[B, S] scores remain. Source padding gets a large negative score before the
softmax, so its weights are exactly 0.

The functions are pure (a params dict in, arrays out) so that they can run
inside `lax.scan`; `AttentionParams` only creates the params.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import ops

KINDS = ('none', 'additive', 'dot', 'general')
# Finite, so that a row without any real position gives uniform weights
# instead of NaN; exp(-1e9 - max) is exactly 0 in f32.
MASKED_SCORE = -1e9


def check(kind: str, key_size: int, query_size: int) -> None:
  """One-line errors for an unknown kind or incompatible sizes."""
  if kind not in KINDS:
    raise ValueError(f'attention={kind!r} is not one of {KINDS}')
  if kind == 'dot' and key_size != query_size:
    raise ValueError(
        f"attention='dot' needs encoder output size ({key_size}) == decoder "
        f"hidden size ({query_size}); use 'general' or 'additive'")


class AttentionParams(nn.Module):
  """Creates the params of one attention kind; returns them as a dict.

  Attributes:
    kind: one of KINDS.
    key_size: Dk, the encoder output size.
    query_size: Dq, the decoder hidden size.
    attention_size: A, the hidden size of 'additive' (unused otherwise).
    init_scale: > 0: uniform(-s, s) for every param; 0: lecun-normal / zeros.

  Params: 'additive': key_kernel [Dk, A], query_kernel [Dq, A], bias [A],
  v [A]; 'general': kernel [Dk, Dq]; 'dot', 'none': none.
  """
  kind: str
  key_size: int
  query_size: int
  attention_size: int
  init_scale: float = 0.0

  @nn.compact
  def __call__(self) -> dict[str, jax.Array]:
    check(self.kind, self.key_size, self.query_size)
    weight = ops.weight_init(self.init_scale, nn.initializers.lecun_normal())
    if self.kind == 'additive':
      a = self.attention_size
      v_init = ops.weight_init(
          self.init_scale, nn.initializers.normal(stddev=a ** -0.5))
      return {
          'key_kernel': self.param('key_kernel', weight, (self.key_size, a)),
          'query_kernel': self.param('query_kernel', weight, (self.query_size, a)),
          'bias': self.param('bias', ops.bias_init(self.init_scale), (a,)),
          'v': self.param('v', v_init, (a,)),
      }
    if self.kind == 'general':
      return {'kernel': self.param(
          'kernel', weight, (self.key_size, self.query_size))}
    return {}


def precompute_keys(kind: str, params: dict[str, jax.Array], values: jax.Array,
                    dtype: Any) -> jax.Array:
  """values [B, S, Dk] -> keys [B, S, A | Dq | Dk] (f32); [B, S, 0] for 'none'."""
  if kind == 'additive':
    return ops.matmul(values, params['key_kernel'], dtype) + params['bias']
  if kind == 'general':
    return ops.matmul(values, params['kernel'], dtype)
  if kind == 'dot':
    return values.astype(jnp.float32)
  return jnp.zeros(values.shape[:2] + (0,), jnp.float32)


def scores(kind: str, params: dict[str, jax.Array], keys: jax.Array,
           query: jax.Array, dtype: Any) -> jax.Array:
  """keys [B, S, K], query [B, Dq] -> unmasked scores [B, S] f32."""
  if kind == 'additive':
    q = ops.matmul(query, params['query_kernel'], dtype)  # [B, A]
    energy = jnp.tanh(keys + q[:, None, :])  # [B, S, A]
    return ops.matmul(energy, params['v'][:, None], dtype)[..., 0]
  return jnp.einsum('bsk,bk->bs', keys, query.astype(jnp.float32))


def attend(kind: str, params: dict[str, jax.Array], keys: jax.Array,
           values: jax.Array, mask: jax.Array, query: jax.Array, dtype: Any
           ) -> tuple[jax.Array, jax.Array]:
  """One step of attention (not for 'none').

  keys [B, S, K] from `precompute_keys`, values [B, S, Dk], mask [B, S]
  (1 real, 0 pad), query [B, Dq] -> (context [B, Dk], weights [B, S]); the
  weights are 0 at padding and sum to 1 over the real positions.
  """
  s = scores(kind, params, keys, query, dtype)
  s = jnp.where(mask > 0, s, MASKED_SCORE)
  weights = jax.nn.softmax(s, axis=-1)
  context = jnp.einsum('bs,bsd->bd', weights, values.astype(jnp.float32))
  return context, weights
