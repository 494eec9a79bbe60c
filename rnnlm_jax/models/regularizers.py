"""AWD-LSTM regularizers (Merity et al. 2017), each off unless its rate > 0.

Model side (used by RecurrentLM / RecurrentLayer):
  locked_dropout   one mask per sequence, shared over time (variational
                   dropout, Gal & Ghahramani): [B, T, D] with a [B, 1, D] mask.
  embedding_dropout  drops whole rows (words) of the embedding matrix [V, E]:
                   every occurrence of a dropped word in the batch is zero,
                   the kept rows are scaled by 1/(1-p).
  drop_weights     DropConnect on a matrix (AWD's WeightDrop on W_hh): one
                   mask per call, i.e. per BPTT window, shared over time.

Loss side (used by train_step): activation regularization (AR) and temporal
activation regularization (TAR) on the last layer's outputs.
"""

import jax
import jax.numpy as jnp


def _keep_mask(key: jax.Array, rate: float, shape) -> jax.Array:
  """Inverted-dropout multiplier: 0 or 1/(1-rate), f32 of `shape`."""
  keep = jax.random.bernoulli(key, 1.0 - rate, shape)
  return keep.astype(jnp.float32) / (1.0 - rate)


def locked_dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
  """x [B, T, D] -> x * mask [B, 1, D]: the same units dropped at every t."""
  if rate <= 0.0:
    return x
  mask = _keep_mask(key, rate, (x.shape[0], 1, x.shape[2]))
  return (x * mask).astype(x.dtype)


def embedding_dropout(key: jax.Array, embedding: jax.Array,
                      rate: float) -> jax.Array:
  """embedding [V, E] -> the same with whole rows zeroed (kept rows rescaled).

  Applied to the matrix before the lookup, so a dropped word is dropped at
  every position of the batch (AWD's `embedded_dropout`).
  """
  if rate <= 0.0:
    return embedding
  return embedding * _keep_mask(key, rate, (embedding.shape[0], 1))


def drop_weights(key: jax.Array, kernel: jax.Array, rate: float) -> jax.Array:
  """DropConnect: kernel [H, G*H] * one inverted-dropout mask of its shape."""
  if rate <= 0.0:
    return kernel
  return kernel * _keep_mask(key, rate, kernel.shape)


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """values [B, T', H], mask [B, T'] -> mean over the unmasked [B, T'] x H."""
  total = (values * mask[..., None]).sum()
  count = jnp.maximum(mask.sum(), 1.0) * values.shape[-1]
  return total / count


def activation_reg(h_dropped: jax.Array, mask: jax.Array) -> jax.Array:
  """AR: mean(h^2) of the last layer's DROPPED outputs [B, T, H] (real tokens).

  The caller scales it by train.ar_alpha (AWD: 2).
  """
  return _masked_mean(jnp.square(h_dropped.astype(jnp.float32)), mask)


def temporal_activation_reg(h: jax.Array, mask: jax.Array) -> jax.Array:
  """TAR: mean((h_t - h_{t-1})^2) of the UNdropped last-layer outputs [B, T, H].

  Pairs within the window only (T-1 per row), both tokens real. The caller
  scales it by train.tar_beta (AWD: 1).
  """
  h = h.astype(jnp.float32)
  diff = h[:, 1:] - h[:, :-1]  # [B, T-1, H]
  return _masked_mean(jnp.square(diff), mask[:, 1:] * mask[:, :-1])
