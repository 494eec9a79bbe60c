"""The recurrent language model: embedding, stacked recurrent layers, softmax.

  tokens [B, T] -> embed [B, T, E] -> dropout_embed
    -> layer_0 -> dropout -> layer_1 -> ... -> layer_{L-1} -> dropout_output
    -> output projection -> logits [B, T, V] (f32)

The recurrent state is explicit (passed in, returned), so the caller can carry
it across BPTT windows or reset it. Dropout is on the non-recurrent
connections only (Zaremba et al.), with a fresh mask per time step.

Params: 'embedding' [V, E]; 'layer_{l}' (see cells.RecurrentLayer); untied:
'output_kernel' [H, V] and 'output_bias' [V]; tied: only 'output_bias' [V],
the logits being h @ embedding.T.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.models import ops

Carry = tuple[cells.Carry, ...]  # one per-layer carry tuple per layer
Dtype = Any


class RecurrentLM(nn.Module):
  """A stack of recurrent layers between an embedding and a softmax layer.

  Attributes (see the `model` section of rnnlm_jax/configs.py):
    vocab_size: V.
    cell: one of cells.CELLS.
    num_layers: L.
    hidden_size: H of every layer, except the last one when tied.
    embed_size: E.
    tie_embeddings: logits = h @ embedding.T; the last layer then has E units
      (the AWD-LSTM convention) so that the shapes match.
    dropout_embed, dropout, dropout_output: dropout rates (see module doc).
    init_scale: > 0: every param ~ uniform(-s, s); 0: defaults.
    forget_bias: added to the LSTM forget-gate bias at init.
    dtype: matmul operand dtype (float32 | bfloat16); f32 accumulation, and
      params, state and logits stay f32.
    unroll: `lax.scan` unroll of each layer's recurrence.
  """
  vocab_size: int
  cell: str = 'lstm'
  num_layers: int = 2
  hidden_size: int = 200
  embed_size: int = 200
  tie_embeddings: bool = False
  dropout_embed: float = 0.0
  dropout: float = 0.0
  dropout_output: float = 0.0
  init_scale: float = 0.1
  forget_bias: float = 0.0
  dtype: Dtype = jnp.float32
  unroll: int = 1  # on CPU 8 and 16 were no faster and compiled ~10x slower

  @nn.nowrap
  def layer_sizes(self) -> tuple[int, ...]:
    """Units of each recurrent layer."""
    sizes = [self.hidden_size] * self.num_layers
    if self.tie_embeddings:
      sizes[-1] = self.embed_size
    return tuple(sizes)

  @nn.nowrap
  def initial_carry(self, batch_size: int) -> Carry:
    """Zero state for every layer (f32); needs no params or binding."""
    return tuple(
        cells.initial_carry(self.cell, batch_size, size)
        for size in self.layer_sizes())

  @nn.compact
  def __call__(self, tokens: jax.Array, carry: Carry, *,
               train: bool) -> tuple[jax.Array, Carry]:
    """tokens int [B, T], carry -> (logits [B, T, V] f32, new carry).

    With train=True and any dropout rate > 0, the caller must pass
    rngs={'dropout': key}.
    """
    if len(carry) != self.num_layers:
      raise ValueError(
          f'carry has {len(carry)} layers, the model has {self.num_layers}')
    embedding = self.param(
        'embedding',
        ops.weight_init(self.init_scale, nn.initializers.normal(stddev=1.0)),
        (self.vocab_size, self.embed_size))
    x = jnp.take(embedding, tokens, axis=0)  # [B, T, E] f32
    x = nn.Dropout(self.dropout_embed, deterministic=not train)(x)
    new_carry = []
    for i, size in enumerate(self.layer_sizes()):
      if i > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x, layer_carry = cells.RecurrentLayer(
          cell=self.cell, hidden_size=size, init_scale=self.init_scale,
          forget_bias=self.forget_bias, dtype=self.dtype, unroll=self.unroll,
          name=f'layer_{i}')(x, carry[i])
      new_carry.append(layer_carry)
    x = nn.Dropout(self.dropout_output, deterministic=not train)(x)
    return self._logits(x, embedding), tuple(new_carry)

  def _logits(self, h: jax.Array, embedding: jax.Array) -> jax.Array:
    """h [B, T, H_last] -> logits [B, T, V] f32 (in `dtype`, f32 accumulate)."""
    if self.tie_embeddings:
      kernel = embedding.T  # [E, V]
    else:
      kernel = self.param(
          'output_kernel',
          ops.weight_init(self.init_scale, nn.initializers.lecun_normal()),
          (h.shape[-1], self.vocab_size))
    bias = self.param(
        'output_bias', ops.bias_init(self.init_scale), (self.vocab_size,))
    return ops.matmul(h, kernel, self.dtype) + bias


def count_params(params: Any) -> int:
  """Total number of scalars in a params pytree."""
  return sum(int(jnp.size(leaf)) for leaf in jax.tree_util.tree_leaves(params))
