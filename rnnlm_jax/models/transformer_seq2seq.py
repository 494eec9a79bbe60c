"""A pre-LayerNorm Transformer encoder-decoder (Vaswani et al. 2017).

  source [B, S] -> embedding + position -> dropout_embed
    -> L x transformer.Block (self-attention over the real source tokens, MLP)
    -> LN -> encoded [B, S, D]
  inputs [B, T] (<bos> + target) -> embedding + position -> dropout_embed
    -> L x DecoderLayer:  x + dropout(causal self-attention(LN(x)))
                          x + dropout(cross-attention(LN(x), encoded))
                          x + dropout(mlp(LN(x)))
    -> LN -> dropout_output -> output layer -> logits [B, T, V_tgt] f32

The shape of bentrevett/pytorch-seq2seq's Transformer (notebook 6: 3 + 3
layers, D 256, 8 heads, MLP 512, dropout 0.1, learned positions), with
pre-LN blocks and GELU as TransformerLM (models/transformer.py), whose Block
is the encoder layer. Source padding is masked out of the encoder's
self-attention and of every cross-attention (its weights are exactly 0, so
pad ids change nothing); the decoder's self-attention is causal.

Decoding (rnnlm_jax.decoding) runs `encode` once, then `decode_step` per
token with a key/value cache of `max_len` slots per decoder layer (fixed
shape: the whole search is one jit). The cross-attention keys and values are
computed once per sentence in `encode`. Teacher-forced and step-by-step
logits are the same function (tested).

Params: 'source_embedding' [V_src, D], 'target_embedding' [V_tgt, D];
'source_position', 'target_position' [max_len, D] (learned positions);
'encoder_layers_{l}' (transformer.Block), 'encoder_norm';
'decoder_layers_{l}' (DecoderLayer), 'decoder_norm'; 'output_kernel'
[D, V_tgt] (untied only) and 'output_bias' [V_tgt]. Initialization as
TransformerLM: normal(0.02) weights and embeddings, zero biases, residual
output projections normal(0.02 / sqrt(n)), n the residual branches (2 L in
the encoder, 3 L in the decoder).
"""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import attention as attention_lib
from rnnlm_jax.models import ops
from rnnlm_jax.models import transformer

Dtype = Any
INIT_STD = 0.02


class DecoderState(NamedTuple):
  """The incremental decoder state; every leaf has the batch first (beam
  search gathers them along axis 0).

  position: int32 [B], the position of the token fed next (= tokens so far).
  keys, values: per decoder layer, f32 [B, max_len, H, Dh] self-attention
    cache; slots >= position are not read.
  """
  position: jax.Array
  keys: tuple[jax.Array, ...]
  values: tuple[jax.Array, ...]


class Memory(NamedTuple):
  """What `encode` returns; every leaf has the batch first.

  mask: f32 [B, S] source mask (1 real, 0 pad).
  keys, values: per decoder layer, f32 [B, S, H, Dh] cross-attention keys
    and values of the encoder output.
  state: the decoder's initial DecoderState (position 0, empty cache).
  """
  mask: jax.Array
  keys: tuple[jax.Array, ...]
  values: tuple[jax.Array, ...]
  state: DecoderState


class Attention(nn.Module):
  """Multi-head attention whose projections can be called apart (keys and
  values hoisted or cached, queries per step).

  Params (the shapes of flax's MultiHeadDotProductAttention): '{query, key,
  value}_kernel' [D, H, Dh], '{..}_bias' [H, Dh], 'out_kernel' [H, Dh, D],
  'out_bias' [D]. Matmuls in `dtype` with f32 results (ops.einsum).
  """
  d_model: int
  num_heads: int
  attention_dropout: float
  out_init_std: float
  dtype: Dtype

  def setup(self):
    heads, head_dim = self.num_heads, self.d_model // self.num_heads
    init = nn.initializers.normal(INIT_STD)
    zeros = nn.initializers.zeros_init()
    for name in ('query', 'key', 'value'):
      setattr(self, f'{name}_kernel',
              self.param(f'{name}_kernel', init, (self.d_model, heads, head_dim)))
      setattr(self, f'{name}_bias', self.param(f'{name}_bias', zeros, (heads, head_dim)))
    self.out_kernel = self.param('out_kernel', nn.initializers.normal(self.out_init_std),
                                 (heads, head_dim, self.d_model))
    self.out_bias = self.param('out_bias', zeros, (self.d_model,))
    self.weights_dropout = nn.Dropout(self.attention_dropout)

  def _project(self, x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    return ops.einsum('...d,dhk->...hk', x, kernel, self.dtype) + bias

  def queries(self, x: jax.Array) -> jax.Array:
    """[B, T, D] -> [B, T, H, Dh] f32, scaled by 1 / sqrt(Dh)."""
    q = self._project(x, self.query_kernel, self.query_bias)
    return q / math.sqrt(q.shape[-1])

  def keys_values(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[B, S, D] -> keys, values [B, S, H, Dh] f32."""
    return (self._project(x, self.key_kernel, self.key_bias),
            self._project(x, self.value_kernel, self.value_bias))

  def attend(self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array,
             train: bool) -> tuple[jax.Array, jax.Array]:
    """q [B, T, H, Dh], k, v [B, S, H, Dh], mask bool broadcastable to
    [B, H, T, S] -> (output [B, T, D] f32, weights [B, H, T, S] f32; the
    weights before attention dropout)."""
    scores = ops.einsum('bthk,bshk->bhts', q, k, self.dtype)
    weights = jax.nn.softmax(
        jnp.where(mask, scores, attention_lib.MASKED_SCORE), axis=-1)
    dropped = self.weights_dropout(weights, deterministic=not train)
    context = ops.einsum('bhts,bshk->bthk', dropped, v, self.dtype)
    out = ops.einsum('bthk,hkd->btd', context, self.out_kernel, self.dtype)
    return out + self.out_bias, weights


class FeedForward(nn.Module):
  """[..., D] -> Dense(mlp_dim) -> GELU -> Dense(D) (as transformer.Block's);
  params 'kernel_in' [D, F], 'bias_in', 'kernel_out' [F, D], 'bias_out'."""
  mlp_dim: int
  out_init_std: float
  dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d_model = x.shape[-1]
    zeros = nn.initializers.zeros_init()
    kernel_in = self.param('kernel_in', nn.initializers.normal(INIT_STD),
                           (d_model, self.mlp_dim))
    kernel_out = self.param('kernel_out', nn.initializers.normal(self.out_init_std),
                            (self.mlp_dim, d_model))
    h = nn.gelu(ops.matmul(x, kernel_in, self.dtype)
                + self.param('bias_in', zeros, (self.mlp_dim,)))
    return (ops.matmul(h, kernel_out, self.dtype)
            + self.param('bias_out', zeros, (d_model,)))


class DecoderLayer(nn.Module):
  """Pre-LN decoder layer: causal self-attention, cross-attention, MLP."""
  d_model: int
  num_heads: int
  mlp_dim: int
  dropout: float
  attention_dropout: float
  residual_init_std: float
  dtype: Dtype

  def setup(self):
    attention = lambda: Attention(self.d_model, self.num_heads,
                                  self.attention_dropout,
                                  self.residual_init_std, self.dtype)
    self.self_norm = nn.LayerNorm()
    self.self_attention = attention()
    self.cross_norm = nn.LayerNorm()
    self.cross_attention = attention()
    self.mlp_norm = nn.LayerNorm()
    self.mlp = FeedForward(self.mlp_dim, self.residual_init_std, self.dtype)
    self.residual_dropout = nn.Dropout(self.dropout)

  def cross_keys_values(self, encoded: jax.Array) -> tuple[jax.Array, jax.Array]:
    """encoded [B, S, D] -> cross-attention keys, values [B, S, H, Dh]."""
    return self.cross_attention.keys_values(encoded)

  def __call__(self, x: jax.Array, cross: tuple[jax.Array, jax.Array],
               cross_mask: jax.Array, self_mask: jax.Array, *,
               cache: tuple[jax.Array, jax.Array] | None = None,
               position: jax.Array | None = None, train: bool = False
               ) -> tuple[jax.Array, jax.Array, tuple[jax.Array, jax.Array]]:
    """x [B, T, D]; cross: keys, values [B, S, H, Dh]; cross_mask bool
    [B, 1, 1, S]; self_mask bool [B|1, 1, T, T'].

    Without a cache T' = T (teacher forcing). With a cache (keys, values
    [B, L, H, Dh]) T = 1: this token's key and value are written at slot
    position [B] and the query attends over the L slots (T' = L).

    Returns (x [B, T, D], cross-attention weights [B, H, T, S], the
    self-attention keys and values: [B, T, H, Dh], or the updated cache).
    """
    drop = lambda h: self.residual_dropout(h, deterministic=not train)
    h = self.self_norm(x)
    q = self.self_attention.queries(h)
    k, v = self.self_attention.keys_values(h)
    if cache is not None:
      rows = jnp.arange(x.shape[0])
      k = cache[0].at[rows, position].set(k[:, 0])
      v = cache[1].at[rows, position].set(v[:, 0])
    x = x + drop(self.self_attention.attend(q, k, v, self_mask, train)[0])
    h = self.cross_norm(x)
    out, weights = self.cross_attention.attend(
        self.cross_attention.queries(h), *cross, cross_mask, train)
    x = x + drop(out)
    x = x + drop(self.mlp(self.mlp_norm(x)))
    return x, weights, (k, v)


class TransformerSeq2Seq(nn.Module):
  """Transformer encoder-decoder (see the module docstring) with the
  training driver's model interface (as seq2seq.TranslationModel): called
  on a PairBatch's model_inputs (source, source_mask, inputs) and an empty
  carry, passed through unchanged.

  Attributes (the `model` section of rnnlm_jax/configs.py):
    source_vocab_size, target_vocab_size: V_src, V_tgt.
    num_layers: L encoder layers and L decoder layers.  d_model: D.
    num_heads: H, divides D (Dh = D / H).  mlp_dim: the MLP's width.
    position: 'learned' | 'sinusoidal'.
    max_len: positions of a source or a target (the learned tables' size)
      and the decoder cache's slots: the most tokens a decode can emit.
    tie_embeddings: logits = h @ target_embedding.T + output_bias.
    dropout_embed, dropout (residual branches), dropout_output (after the
      decoder's final LayerNorm), attention_dropout (attention weights).
    dtype: matmul operand dtype; params, LayerNorms, residual stream,
      cache and logits f32.
  """
  source_vocab_size: int
  target_vocab_size: int
  num_layers: int = 3
  d_model: int = 256
  num_heads: int = 8
  mlp_dim: int = 512
  position: str = 'learned'
  max_len: int = 100
  tie_embeddings: bool = False
  dropout_embed: float = 0.1
  dropout: float = 0.1
  dropout_output: float = 0.0
  attention_dropout: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.nowrap
  def _check(self) -> None:
    if self.d_model % self.num_heads:
      raise ValueError(f'num_heads={self.num_heads} must divide '
                       f'd_model={self.d_model}')
    if self.position not in transformer.POSITIONS:
      raise ValueError(f'position={self.position!r} is not one of '
                       f'{transformer.POSITIONS}')

  def setup(self):
    self._check()
    init = nn.initializers.normal(INIT_STD)
    d, n = self.d_model, self.num_layers
    self.source_embedding = self.param(
        'source_embedding', init, (self.source_vocab_size, d))
    self.target_embedding = self.param(
        'target_embedding', init, (self.target_vocab_size, d))
    if self.position == 'learned':
      self.source_position = self.param('source_position', init, (self.max_len, d))
      self.target_position = self.param('target_position', init, (self.max_len, d))
    self.encoder_layers = [
        transformer.Block(self.num_heads, self.mlp_dim, self.dropout,
                          self.attention_dropout, INIT_STD / math.sqrt(2 * n),
                          self.dtype) for _ in range(n)]
    self.encoder_norm = nn.LayerNorm()
    self.decoder_layers = [
        DecoderLayer(d, self.num_heads, self.mlp_dim, self.dropout,
                     self.attention_dropout, INIT_STD / math.sqrt(3 * n),
                     self.dtype) for _ in range(n)]
    self.decoder_norm = nn.LayerNorm()
    if not self.tie_embeddings:
      self.output_kernel = self.param('output_kernel', init,
                                      (d, self.target_vocab_size))
    self.output_bias = self.param('output_bias', nn.initializers.zeros_init(),
                                  (self.target_vocab_size,))
    self.embed_dropout = nn.Dropout(self.dropout_embed)
    self.output_dropout = nn.Dropout(self.dropout_output)

  # --- the training driver's interface ----------------------------------

  def __call__(self, model_inputs, carry, *, train: bool):
    """model_inputs (source int [B, S], source_mask [B, S], inputs int
    [B, T]), carry () -> (logits [B, T, V_tgt] f32, carry). train=True with
    dropout needs rngs={'dropout': key}."""
    source, source_mask, inputs = model_inputs
    return self.logits_and_attention(source, source_mask, inputs,
                                     train=train)[0], carry

  @nn.nowrap
  def initial_carry(self, batch_size: int) -> tuple:
    del batch_size
    return ()

  @nn.nowrap
  def example_inputs(self, batch_size: int, seq_len: int):
    """Inputs of the right structure for init: ([B, T] ids, mask, [B, T]
    ids), T = min(seq_len, max_len) (the params do not depend on it)."""
    length = min(seq_len, self.max_len)
    ids = jnp.zeros((batch_size, length), jnp.int32)
    return (ids, jnp.ones((batch_size, length), jnp.float32), ids)

  # --- the model --------------------------------------------------------

  @nn.nowrap
  def _check_length(self, length: int, what: str) -> None:
    if length > self.max_len:
      raise ValueError(
          f'model.transformer.max_len={self.max_len} is too small for {what} '
          f'of {length} tokens (padded; see data.paired.max_source_len / '
          'max_target_len)')

  def _embed(self, side: str, ids: jax.Array, positions: jax.Array,
             train: bool) -> jax.Array:
    """side 'source' | 'target'; ids, positions int [B, T] -> [B, T, D] f32
    (after dropout_embed)."""
    x = jnp.take(getattr(self, f'{side}_embedding'), ids, axis=0)
    if self.position == 'learned':
      x = x + jnp.take(getattr(self, f'{side}_position'), positions, axis=0)
    else:
      x = x + transformer.sinusoidal(positions, self.d_model)
    return self.embed_dropout(x, deterministic=not train)

  def encode(self, source: jax.Array, source_mask: jax.Array, *,
             train: bool = False) -> Memory:
    """source int [B, S], source_mask [B, S] -> Memory (S <= max_len)."""
    batch, length = source.shape
    self._check_length(length, 'a source batch')
    mask = source_mask.astype(jnp.float32)
    positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
    x = self._embed('source', source, positions, train)
    # Every query attends to the real tokens only (pad queries too: their
    # outputs are never read, and a row is never all masked unless the
    # sentence is empty, which gives uniform weights, not NaN).
    key_mask = (mask > 0)[:, None, None, :]  # [B, 1, 1, S]
    for layer in self.encoder_layers:
      x = layer(x, key_mask, train)
    encoded = self.encoder_norm(x)
    keys, values = zip(*(layer.cross_keys_values(encoded)
                         for layer in self.decoder_layers))
    heads, head_dim = self.num_heads, self.d_model // self.num_heads
    empty = jnp.zeros((batch, self.max_len, heads, head_dim), jnp.float32)
    state = DecoderState(jnp.zeros((batch,), jnp.int32),
                         (empty,) * self.num_layers, (empty,) * self.num_layers)
    return Memory(mask, tuple(keys), tuple(values), state)

  def _logits(self, x: jax.Array, train: bool) -> jax.Array:
    """Decoder output [B, T, D] -> logits [B, T, V_tgt] f32."""
    x = self.output_dropout(self.decoder_norm(x), deterministic=not train)
    rows = x.reshape(-1, self.d_model)
    if self.tie_embeddings:
      logits = ops.matmul_nt(rows, self.target_embedding, self.dtype)
    else:
      logits = ops.matmul(rows, self.output_kernel, self.dtype)
    logits = logits + self.output_bias
    return logits.reshape(x.shape[:-1] + (self.target_vocab_size,))

  def logits_and_attention(self, source: jax.Array, source_mask: jax.Array,
                           inputs: jax.Array, *, train: bool = False
                           ) -> tuple[jax.Array, jax.Array]:
    """Teacher forcing: source int [B, S], source_mask [B, S], inputs int
    [B, T] (<bos> + target) -> (logits [B, T, V_tgt] f32, the last decoder
    layer's cross-attention weights averaged over heads [B, T, S])."""
    memory = self.encode(source, source_mask, train=train)
    batch, length = inputs.shape
    self._check_length(length, 'a target batch')
    positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
    x = self._embed('target', inputs, positions, train)
    causal = jnp.tril(jnp.ones((length, length), bool))[None, None]  # [1, 1, T, T]
    cross_mask = (memory.mask > 0)[:, None, None, :]
    for l, layer in enumerate(self.decoder_layers):
      x, weights, _ = layer(x, (memory.keys[l], memory.values[l]), cross_mask,
                            causal, train=train)
    return self._logits(x, train), jnp.mean(weights, axis=1)

  def decode_step(self, memory: Memory, state: DecoderState, token: jax.Array,
                  *, train: bool = False
                  ) -> tuple[jax.Array, DecoderState, jax.Array]:
    """One decoder step: the previous token int [B] at state.position ->
    (logits [B, V_tgt] f32, the state one position on, the last layer's
    cross-attention weights averaged over heads [B, S]). Positions must stay
    below max_len (the decoders check their max_len against it)."""
    position = state.position
    x = self._embed('target', token[:, None], position[:, None], train)  # [B, 1, D]
    slots = jnp.arange(self.max_len)
    self_mask = (slots[None, :] <= position[:, None])[:, None, None, :]  # [B, 1, 1, L]
    cross_mask = (memory.mask > 0)[:, None, None, :]
    keys, values = [], []
    for l, layer in enumerate(self.decoder_layers):
      x, weights, (k, v) = layer(
          x, (memory.keys[l], memory.values[l]), cross_mask, self_mask,
          cache=(state.keys[l], state.values[l]), position=position, train=train)
      keys.append(k)
      values.append(v)
    state = DecoderState(position + 1, tuple(keys), tuple(values))
    return self._logits(x, train)[:, 0], state, jnp.mean(weights, axis=1)[:, 0]
