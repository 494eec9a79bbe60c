"""A causal self-attention LM with the interface of `RecurrentLM`.

  tokens [B, T] (+ the last M tokens of earlier windows, from the carry)
    -> embedding + position -> dropout_embed
    -> L x [x + dropout(attn(LN(x))), x + dropout(mlp(LN(x)))]   (pre-LayerNorm)
    -> LN -> dropout_output -> output projection -> logits [B, T, V] (f32)

`__call__(tokens, carry, *, train) -> (logits, carry)` and
`initial_carry(batch_size)` match RecurrentLM, so the training loop (TBPTT
windows with the carry sharded over the batch), evaluation and sampling run
unchanged. The carry is a memory of the previous `memory_len` tokens of each
row, int32 [B, M] with -1 for empty slots (all empty at the start):

- each call attends over [memory, tokens] (M + T positions) with a causal mask
  that also hides empty slots; logits are returned for the T new tokens only,
  and the new carry is the last M of those M + T tokens. The memory holds ids,
  not hidden states: earlier windows are re-encoded with the current params
  (no gradient crosses windows, as in truncated BPTT).
- a token's position is the number of real tokens before it in that span, so
  reading a text in one call or in windows (or token by token, as sampling
  does) gives the same positions while the memory holds everything earlier:
  with memory_len >= T a window's logits equal those of one long call.

memory_len 0 gives the plain fixed-window LM (the carry is then a [B, 1]
placeholder that is never read), but sampling then sees only the last token.

Params: 'embedding' [V, D], 'position' [max_len, D] (learned positions),
'block_{l}' (LayerNorms, attention, MLP), 'final_norm', 'output' (untied).
Initialization: normal(0.02) weights, zero biases; the residual output
projections normal(0.02 / sqrt(2 L)) (GPT-2).
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

Carry = tuple[jax.Array]
Dtype = Any
EMPTY = -1  # an empty memory slot
POSITIONS = ('learned', 'sinusoidal')  # model.transformer.position


def sinusoidal(positions: jax.Array, d_model: int) -> jax.Array:
  """positions int [B, S] -> [B, S, D] sin/cos features (Vaswani et al.)."""
  half = d_model // 2
  freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
  angles = positions.astype(jnp.float32)[..., None] * freqs
  features = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
  if d_model % 2:
    features = jnp.pad(features, [(0, 0)] * (features.ndim - 1) + [(0, 1)])
  return features


class Block(nn.Module):
  """Pre-LayerNorm transformer block."""
  num_heads: int
  mlp_dim: int
  dropout: float
  attention_dropout: float
  residual_init_std: float
  dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
    d_model = x.shape[-1]
    init = nn.initializers.normal(0.02)
    residual_init = nn.initializers.normal(self.residual_init_std)
    h = nn.LayerNorm(name='attention_norm')(x)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype, param_dtype=jnp.float32,
        dropout_rate=self.attention_dropout, deterministic=not train,
        kernel_init=init, out_kernel_init=residual_init,
        name='attention')(h, mask=mask)
    x = x + nn.Dropout(self.dropout, deterministic=not train)(h.astype(jnp.float32))
    h = nn.LayerNorm(name='mlp_norm')(x)
    h = nn.Dense(self.mlp_dim, dtype=self.dtype, kernel_init=init, name='mlp_in')(h)
    h = nn.gelu(h)
    h = nn.Dense(d_model, dtype=self.dtype, kernel_init=residual_init,
                 name='mlp_out')(h)
    return x + nn.Dropout(self.dropout, deterministic=not train)(h.astype(jnp.float32))


class TransformerLM(nn.Module):
  """Causal pre-LN transformer LM; see the module docstring.

  Attributes (the `model` section of rnnlm_jax/configs.py):
    vocab_size: V.  num_layers: L.  d_model: D.  num_heads: divides D.
    mlp_dim: feed-forward width.  position: 'learned' | 'sinusoidal'.
    memory_len: M, earlier tokens kept in the carry.  max_len: size of the
      learned position table (M + T must fit).
    tie_embeddings: logits = h @ embedding.T.
    dropout_embed, dropout, dropout_output, attention_dropout: rates.
    dtype: matmul dtype; params, LayerNorms, residual stream and logits f32.
  """
  vocab_size: int
  num_layers: int = 2
  d_model: int = 256
  num_heads: int = 4
  mlp_dim: int = 1024
  position: str = 'learned'
  memory_len: int = 64
  max_len: int = 512
  tie_embeddings: bool = False
  dropout_embed: float = 0.0
  dropout: float = 0.0
  dropout_output: float = 0.0
  attention_dropout: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.nowrap
  def initial_carry(self, batch_size: int) -> Carry:
    """An empty memory: int32 [B, max(M, 1)] of EMPTY."""
    return (jnp.full((batch_size, max(self.memory_len, 1)), EMPTY, jnp.int32),)

  @nn.compact
  def __call__(self, tokens: jax.Array, carry: Carry, *,
               train: bool) -> tuple[jax.Array, Carry]:
    """tokens int [B, T], carry -> (logits [B, T, V] f32, new carry)."""
    (memory,) = carry
    num_new = tokens.shape[1]
    tokens = tokens.astype(jnp.int32)
    if self.memory_len:
      ids = jnp.concatenate([memory.astype(jnp.int32), tokens], axis=1)  # [B, S]
    else:
      ids = tokens
    span = ids.shape[1]
    if self.position == 'learned' and span > self.max_len:
      raise ValueError(
          f'model.transformer.max_len={self.max_len} is too small: memory_len '
          f'{self.memory_len} + window {num_new} = {span} positions')
    real = ids != EMPTY
    positions = jnp.maximum(jnp.cumsum(real, axis=1) - 1, 0)  # [B, S]
    init = nn.initializers.normal(0.02)
    embed = nn.Embed(self.vocab_size, self.d_model, embedding_init=init,
                     name='embedding')
    x = embed(jnp.where(real, ids, 0))
    if self.position == 'learned':
      table = self.param('position', init, (self.max_len, self.d_model))
      x = x + jnp.take(table, positions, axis=0)
    else:
      x = x + sinusoidal(positions, self.d_model)
    x = nn.Dropout(self.dropout_embed, deterministic=not train)(x)
    # Query i sees key j <= i that is a real token (and itself, so that no row
    # is all masked; empty slots' outputs are never used).
    index = jnp.arange(span)
    causal = index[None, :] <= index[:, None]  # [S, S]
    mask = causal[None] & (real[:, None, :] | jnp.eye(span, dtype=bool)[None])
    mask = mask[:, None]  # [B, 1, S, S]
    for i in range(self.num_layers):
      x = Block(self.num_heads, self.mlp_dim, self.dropout, self.attention_dropout,
                0.02 / math.sqrt(2 * self.num_layers), self.dtype,
                name=f'block_{i}')(x, mask, train)
    x = x[:, span - num_new:]  # the new tokens only
    x = nn.LayerNorm(name='final_norm')(x)
    x = nn.Dropout(self.dropout_output, deterministic=not train)(x)
    if self.tie_embeddings:
      logits = embed.attend(x.astype(self.dtype))
      logits = logits + self.param('output_bias', nn.initializers.zeros_init(),
                                   (self.vocab_size,))
    else:
      logits = nn.Dense(self.vocab_size, dtype=self.dtype, kernel_init=init,
                        name='output')(x)
    new_memory = ids[:, -self.memory_len:] if self.memory_len else memory
    return logits.astype(jnp.float32), (new_memory,)
