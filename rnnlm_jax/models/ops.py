"""Small numerical helpers shared by the cells and the language model.

Two jobs only: a matmul that honours the optional low-precision compute dtype,
and the parameter initializers (Zaremba's uniform init and the defaults).
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

Dtype = Any
Initializer = Callable[..., jax.Array]


def matmul(x: jax.Array, w: jax.Array, dtype: Dtype) -> jax.Array:
  """`x @ w` with operands cast to `dtype` and an f32 result.

  x: [..., D], w: [D, N] -> [..., N] float32.

  With dtype=bfloat16 the operands are rounded to bf16 (half the memory
  traffic, fast MXU/tensor-core paths) but the products are accumulated in f32
  (`preferred_element_type`), so long sums over D do not lose precision and
  everything downstream (gates, carried state, logits) stays f32.
  """
  dtype = jnp.dtype(dtype)
  if dtype == jnp.float32:
    return jnp.matmul(x.astype(jnp.float32), w.astype(jnp.float32))
  return jnp.matmul(
      x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


def matmul_nt(x: jax.Array, w: jax.Array, dtype: Dtype) -> jax.Array:
  """`x @ w.T` as one dot_general, without materializing the transpose.

  x: [N, D], w: [M, D] -> [N, M] float32; `dtype` as in `matmul`.
  """
  dtype = jnp.dtype(dtype)
  dims = (((x.ndim - 1,), (1,)), ((), ()))
  if dtype == jnp.float32:
    return jax.lax.dot_general(x.astype(jnp.float32), w.astype(jnp.float32), dims)
  return jax.lax.dot_general(x.astype(dtype), w.astype(dtype), dims,
                             preferred_element_type=jnp.float32)


def einsum(spec: str, x: jax.Array, w: jax.Array, dtype: Dtype) -> jax.Array:
  """`jnp.einsum(spec, x, w)` with operands cast to `dtype` and an f32 result
  (f32 accumulation), as `matmul`: for the head-shaped products of attention."""
  dtype = jnp.dtype(dtype)
  if dtype == jnp.float32:
    return jnp.einsum(spec, x.astype(jnp.float32), w.astype(jnp.float32))
  return jnp.einsum(spec, x.astype(dtype), w.astype(dtype),
                    preferred_element_type=jnp.float32)


def symmetric_uniform(scale: float) -> Initializer:
  """uniform(-scale, scale), the init of Zaremba et al. for every weight.

  (flax's `initializers.uniform(s)` samples [0, s), which is not this.)
  """

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)

  return init


def per_gate(init: Initializer, num_gates: int) -> Initializer:
  """Applies `init` separately to each [.., H] gate block of a fused matrix.

  A fused [H, G*H] recurrent matrix must be G orthogonal [H, H] blocks, not one
  orthogonal [H, G*H] matrix (whose blocks are not orthogonal themselves).
  """

  def init_fused(key, shape, dtype=jnp.float32):
    *lead, fused = shape
    block = tuple(lead) + (fused // num_gates,)
    keys = jax.random.split(key, num_gates)
    return jnp.concatenate([init(k, block, dtype) for k in keys], axis=-1)

  return init_fused


def weight_init(init_scale: float, default: Initializer) -> Initializer:
  """uniform(-s, s) when init_scale > 0, else the given default."""
  return symmetric_uniform(init_scale) if init_scale > 0 else default


def bias_init(init_scale: float) -> Initializer:
  """uniform(-s, s) when init_scale > 0 (Zaremba inits biases too), else 0."""
  return weight_init(init_scale, nn.initializers.zeros_init())
