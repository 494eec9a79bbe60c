"""Encoder-decoder with attention (Bahdanau 2015 / Luong 2015 / Cho 2014).

  source [B, S] -> embed -> dropout -> L recurrent layers (bidirectional:
    forward ‖ backward, the backward one reversed within each true length)
    -> values [B, S, Dk] (Dk = 2 H_enc or H_enc), summary [B, Dk]
    (final forward ‖ final backward state at the true last position)
  decoder state s_0 = tanh(W summary + b)   (LSTM decoder: c_0 = 0)
  step t: context c_t, weights a_t = attend(s_{t-1}, values)  (models.attention)
          s_t = cell([emb(y_{t-1}) ; c_t], s_{t-1})
          logits_t = W_out [s_t ; c_t ; emb(y_{t-1})] + b_out

This is the shape of bentrevett/pytorch-seq2seq's attention model (its
encoder, attention, decoder and fc_out), for every attention kind: Luong's
'dot' / 'general' scores are used with the same decoder, with s_{t-1} as the
query. attention='none' is Cho et al. 2014: the context of every step is the
encoder summary. Dropout (rate `dropout`) is on the source and target
embeddings, and between encoder layers when there are several.

Hoisted out of the decoder's `lax.scan` (teacher forcing): the target
embedding's share of the cell's input gates for all T steps (one matmul),
the attention keys (once per sequence, in `encode`), and the output layer
(one [B*T, D] x [D, V] matmul after the scan). Inside the scan: attention,
the context's share of the input gates, h @ W_hh, and the cell equations of
the cell's registry entry (the same ones `RecurrentLayer` scans). The decoder cell's
params are a RecurrentLayer's (`DecoderCellParams`) with input [emb ; context].

Params: 'source_embedding' [V_src, E], 'target_embedding' [V_tgt, E];
'forward_layers_{l}' / 'backward_layers_{l}' (cells.RecurrentLayer);
'bridge' (Dense Dk -> H_dec); 'attention_params' (models.attention);
'decoder_params' (a RecurrentLayer's: kernel_ih [E + Dk, G H_dec], ...);
'output_kernel' [V_tgt, D] (D = H_dec + Dk + E) and 'output_bias' [V_tgt];
tied: 'output_projection' [D, E] instead of 'output_kernel', the logits
being (features @ output_projection) @ target_embedding.T; the tied target
embedding starts normal(1/sqrt(E)), the others normal(1) (as PyTorch's).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import attention
from rnnlm_jax.models import cells
from rnnlm_jax.models import ops

Dtype = Any
FEED = ('argmax', 'sample')


class Memory(NamedTuple):
  """What `encode` returns; every leaf has the batch as its leading axis.

  values:  [B, S, Dk] f32 encoder outputs (0 at padding).
  keys:    [B, S, K] f32 attention keys (models.attention.precompute_keys;
           K = 0 for 'none').
  mask:    [B, S] f32 source mask (1 real, 0 pad).
  summary: [B, Dk] f32 final forward ‖ final backward encoder state (h for
           an LSTM) of the last layer, at each sequence's true length.
  state:   the decoder's initial carry: (h,) for a GRU, (h, c) for an LSTM,
           each [B, H_dec] f32.
  """
  values: jax.Array
  keys: jax.Array
  mask: jax.Array
  summary: jax.Array
  state: cells.Carry


class DecoderCellParams(cells.RecurrentLayer):
  """A RecurrentLayer's params (same names, shapes and init), without its
  scan: the decoder steps its cell itself because the input of step t needs
  the context, which depends on s_{t-1}."""

  @nn.compact
  def __call__(self, input_size: int) -> dict[str, jax.Array]:  # pylint: disable=arguments-differ
    return self._params(cells.spec(self.cell), input_size)


def reverse_padded(x: jax.Array, lengths: jax.Array) -> jax.Array:
  """Reverses the first lengths[b] steps of each row, padding stays put.

  x [B, S, ...], lengths int [B] -> [B, S, ...]. Its own inverse.
  """
  s = jnp.arange(x.shape[1])[None, :]
  n = lengths[:, None]
  index = jnp.where(s < n, n - 1 - s, s)  # [B, S]
  index = index.reshape(index.shape + (1,) * (x.ndim - 2))
  return jnp.take_along_axis(x, index, axis=1)


def dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
  """Inverted dropout, pure (usable inside lax.scan)."""
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0)


def token_log_probs(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """logits [B, T, V], targets int [B, T] -> log p(target) [B, T] f32."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


class Seq2Seq(nn.Module):
  """Recurrent encoder-decoder with attention (see the module docstring).

  Attributes:
    source_vocab_size, target_vocab_size: V_src, V_tgt.
    embed_size: E (source and target embeddings).
    encoder_cell, decoder_cell: one of cells.CELLS.
    encoder_hidden: H_enc per direction; bidirectional: forward ‖ backward.
    encoder_layers: stacked encoder layers (each bidirectional if set).
    decoder_hidden: H_dec.
    attention: one of attention.KINDS.
    attention_size: A of 'additive'; 0 means H_dec (the tutorial's).
    dropout: rate on the embeddings (and between encoder layers).
    tie_embeddings: output layer through the target embedding (see above).
    teacher_forcing: probability that a training step feeds the reference
      token; below 1 (with train=True) the decoder feeds its own prediction
      otherwise (scheduled sampling; the output layer then runs inside the
      scan). Needs rngs 'sampling' (or else 'dropout').
    feed_sampled: 'argmax' or 'sample' (from the softmax): the fed prediction.
    init_scale: > 0: uniform(-s, s) for every param; 0: the defaults.
    dtype: matmul operand dtype (float32 | bfloat16), f32 accumulation.
    unroll: unroll of the encoder's and decoder's scans.
  """
  source_vocab_size: int
  target_vocab_size: int
  embed_size: int = 256
  encoder_cell: str = 'gru'
  encoder_hidden: int = 512
  bidirectional: bool = True
  encoder_layers: int = 1
  decoder_cell: str = 'gru'
  decoder_hidden: int = 512
  attention: str = 'additive'
  attention_size: int = 0
  dropout: float = 0.5
  tie_embeddings: bool = False
  teacher_forcing: float = 1.0
  feed_sampled: str = 'argmax'
  init_scale: float = 0.0
  dtype: Dtype = jnp.float32
  unroll: int = 1

  @nn.nowrap
  def key_size(self) -> int:
    """Dk: the size of an encoder output."""
    return self.encoder_hidden * (2 if self.bidirectional else 1)

  @nn.nowrap
  def _check(self) -> None:
    for name in ('encoder_cell', 'decoder_cell'):
      if getattr(self, name) not in cells.CELLS:
        raise ValueError(f'{name}={getattr(self, name)!r} is not one of '
                         f'{cells.CELLS.names()}')
    attention.check(self.attention, self.key_size(), self.decoder_hidden)
    if self.encoder_layers < 1:
      raise ValueError(f'encoder_layers={self.encoder_layers} must be >= 1')
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f'dropout={self.dropout} must be in [0, 1)')
    if not 0.0 <= self.teacher_forcing <= 1.0:
      raise ValueError(f'teacher_forcing={self.teacher_forcing} must be in [0, 1]')
    if self.feed_sampled not in FEED:
      raise ValueError(f'feed_sampled={self.feed_sampled!r} is not one of {FEED}')

  def setup(self):
    self._check()
    s, e = self.init_scale, self.embed_size
    embedding = ops.weight_init(s, nn.initializers.normal(stddev=1.0))
    weight = ops.weight_init(s, nn.initializers.lecun_normal())
    self.source_embedding = self.param(
        'source_embedding', embedding, (self.source_vocab_size, e))
    # Tied, the target embedding is also the output layer: normal(1) rows
    # would give first logits of std ~10 (a loss far above log V), and
    # Adam's steps, ~lr per entry, would move rows of that size ~sqrt(E)
    # times slower than an output kernel's; normal(1/sqrt(E)) as GPT-2's
    # small tied embeddings.
    self.target_embedding = self.param(
        'target_embedding',
        ops.weight_init(s, nn.initializers.normal(stddev=e ** -0.5))
        if self.tie_embeddings else embedding,
        (self.target_vocab_size, e))
    layer = lambda: cells.RecurrentLayer(
        cell=self.encoder_cell, hidden_size=self.encoder_hidden, init_scale=s,
        dtype=self.dtype, unroll=self.unroll)
    self.forward_layers = [layer() for _ in range(self.encoder_layers)]
    self.backward_layers = (
        [layer() for _ in range(self.encoder_layers)] if self.bidirectional else [])
    self.bridge = nn.Dense(self.decoder_hidden, kernel_init=weight,
                           bias_init=ops.bias_init(s))
    self.attention_params = attention.AttentionParams(
        self.attention, self.key_size(), self.decoder_hidden,
        self.attention_size or self.decoder_hidden, s)
    self.decoder_params = DecoderCellParams(
        cell=self.decoder_cell, hidden_size=self.decoder_hidden, init_scale=s,
        dtype=self.dtype)
    features = self.decoder_hidden + self.key_size() + e
    if self.tie_embeddings:
      self.output_projection = self.param('output_projection', weight, (features, e))
    else:
      self.output_kernel = self.param(
          'output_kernel',
          ops.weight_init(s, nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)),
          (self.target_vocab_size, features))
    self.output_bias = self.param(
        'output_bias', ops.bias_init(s), (self.target_vocab_size,))

  def __call__(self, source: jax.Array, source_mask: jax.Array,
               inputs: jax.Array, *, train: bool) -> jax.Array:
    """source int [B, S], source_mask [B, S], inputs int [B, T] (<bos> +
    target) -> logits [B, T, V_tgt] f32. train=True with dropout > 0 needs
    rngs={'dropout': key}."""
    return self.logits_and_attention(source, source_mask, inputs, train=train)[0]

  def logits_and_attention(self, source: jax.Array, source_mask: jax.Array,
                           inputs: jax.Array, *, train: bool = False
                           ) -> tuple[jax.Array, jax.Array]:
    """As __call__, also returning the attention weights [B, T, S]."""
    memory = self.encode(source, source_mask, train=train)
    if train and self.teacher_forcing < 1.0:
      return self._decode_scheduled(memory, inputs)
    return self._decode_teacher_forced(memory, inputs, train)

  def _drop(self, x: jax.Array, train: bool) -> jax.Array:
    if not train or self.dropout <= 0:
      return x
    return dropout(self.make_rng('dropout'), x, self.dropout)

  def encode(self, source: jax.Array, source_mask: jax.Array, *,
             train: bool = False) -> Memory:
    """source int [B, S], source_mask [B, S] (real tokens first) -> Memory."""
    mask = source_mask.astype(jnp.float32)
    lengths = jnp.sum(mask, axis=-1).astype(jnp.int32)
    x = self._drop(jnp.take(self.source_embedding, source, axis=0), train)
    carry = cells.initial_carry(self.encoder_cell, source.shape[0],
                                self.encoder_hidden)
    for i in range(self.encoder_layers):
      if i > 0:
        x = self._drop(x, train)
      forward, _ = self.forward_layers[i](x, carry, train=train)
      if self.bidirectional:
        # Reversed within each length, so the backward direction starts at
        # the last real token and never reads padding before a real one.
        backward, _ = self.backward_layers[i](
            reverse_padded(x, lengths), carry, train=train)
        backward = reverse_padded(backward, lengths)
        x = jnp.concatenate([forward, backward], axis=-1)
      else:
        x = forward
    values = x * mask[..., None]  # [B, S, Dk]
    last = jnp.maximum(lengths - 1, 0)[:, None, None]
    summary = jnp.take_along_axis(forward, last, axis=1)[:, 0]
    if self.bidirectional:
      # The backward direction ends (after all real tokens) at position 0.
      summary = jnp.concatenate([summary, backward[:, 0]], axis=-1)
    h0 = jnp.tanh(self.bridge(summary))
    state = (h0, jnp.zeros_like(h0)) if self.decoder_cell == 'lstm' else (h0,)
    keys = attention.precompute_keys(
        self.attention, self.attention_params(), values, self.dtype)
    return Memory(values, keys, mask, summary, state)

  def decode_step(self, memory: Memory, state: cells.Carry, token: jax.Array,
                  *, train: bool = False
                  ) -> tuple[jax.Array, cells.Carry, jax.Array]:
    """One decoder step: previous token int [B] and state (a carry as in
    Memory.state) -> (logits [B, V_tgt] f32, new state, weights [B, S])."""
    w = self._weights()
    emb = self._drop(jnp.take(w['embedding'], token, axis=0), train)
    state, context, weights = self._step(w, memory, state, self._gates(w, emb))
    return self._logits(w, state[0], context, emb), state, weights

  def _weights(self) -> dict[str, Any]:
    """Every decoder array, fetched once outside the scans."""
    p = self.decoder_params(self.embed_size + self.key_size())
    e = self.embed_size
    w = {'emb_kernel': p['kernel_ih'][:e], 'ctx_kernel': p['kernel_ih'][e:],
         'bias_ih': cells.input_bias(p), 'kernel_hh': p['kernel_hh'].astype(self.dtype),
         'extra': cells.extra_params(cells.spec(self.decoder_cell), p),
         'attention': self.attention_params(),
         'embedding': self.target_embedding, 'output_bias': self.output_bias}
    if self.tie_embeddings:
      w['output_projection'] = self.output_projection
    else:
      w['output_kernel'] = self.output_kernel
    return w

  @nn.nowrap
  def _gates(self, w: dict[str, Any], emb: jax.Array) -> jax.Array:
    """The embedding's share of the input gates: [..., E] -> [..., G H_dec]."""
    return ops.matmul(emb, w['emb_kernel'], self.dtype) + w['bias_ih']

  @nn.nowrap
  def _step(self, w: dict[str, Any], memory: Memory, carry: cells.Carry,
            emb_gates: jax.Array
            ) -> tuple[cells.Carry, jax.Array, jax.Array]:
    """Attention with s_{t-1}, then one cell step (pure: runs in lax.scan).

    emb_gates [B, G H_dec] -> (new carry, context [B, Dk], weights [B, S]).
    """
    query = carry[0]
    if self.attention == 'none':
      context, weights = memory.summary, jnp.zeros_like(memory.mask)
    else:
      context, weights = attention.attend(
          self.attention, w['attention'], memory.keys, memory.values,
          memory.mask, query, self.dtype)
    x_gates = emb_gates + ops.matmul(context, w['ctx_kernel'], self.dtype)
    h_gates = ops.matmul(query, w['kernel_hh'], self.dtype)
    carry = cells.spec(self.decoder_cell).update(x_gates, h_gates, carry,
                                                 w['extra'])
    return carry, context, weights

  @nn.nowrap
  def _logits(self, w: dict[str, Any], h: jax.Array, context: jax.Array,
              emb: jax.Array) -> jax.Array:
    """[..., H_dec], [..., Dk], [..., E] -> logits [..., V_tgt] f32."""
    features = jnp.concatenate([h, context, emb], axis=-1)
    rows = features.reshape(-1, features.shape[-1])  # a 2-D matmul (rnn_lm)
    if self.tie_embeddings:
      rows = ops.matmul(rows, w['output_projection'], self.dtype)
      kernel = w['embedding']
    else:
      kernel = w['output_kernel']
    logits = ops.matmul_nt(rows, kernel, self.dtype) + w['output_bias']
    return logits.reshape(features.shape[:-1] + (self.target_vocab_size,))

  def _decode_teacher_forced(self, memory: Memory, inputs: jax.Array,
                             train: bool) -> tuple[jax.Array, jax.Array]:
    """inputs int [B, T] -> (logits [B, T, V], weights [B, T, S])."""
    w = self._weights()
    emb = self._drop(jnp.take(w['embedding'], inputs, axis=0), train)
    gates = jnp.swapaxes(self._gates(w, emb), 0, 1)  # [T, B, G H], hoisted

    def step(carry, emb_gates):
      carry, context, weights = self._step(w, memory, carry, emb_gates)
      return carry, (carry[0], context, weights)

    _, outs = jax.lax.scan(step, memory.state, gates, unroll=self.unroll)
    h, context, weights = (jnp.swapaxes(o, 0, 1) for o in outs)
    return self._logits(w, h, context, emb), weights

  def _decode_scheduled(self, memory: Memory, inputs: jax.Array
                        ) -> tuple[jax.Array, jax.Array]:
    """Scheduled sampling (train only): each step t > 0 feeds the reference
    inputs[:, t] with probability teacher_forcing, else the decoder's own
    prediction from step t-1 (argmax or a sample; not differentiated)."""
    w = self._weights()
    rng = self.make_rng('sampling' if self.has_rng('sampling') else 'dropout')
    coin_key, choice_key, drop_key = jax.random.split(rng, 3)
    batch, length = inputs.shape
    reference = jax.random.bernoulli(coin_key, self.teacher_forcing,
                                     (length, batch)).at[0].set(True)
    keys = (jax.random.split(choice_key, length), jax.random.split(drop_key, length))

    def step(state, xs):
      carry, own = state
      teacher, use_teacher, choice_key, drop_key = xs
      token = jnp.where(use_teacher, teacher, own)
      emb = jnp.take(w['embedding'], token, axis=0)
      if self.dropout > 0:
        emb = dropout(drop_key, emb, self.dropout)
      carry, context, weights = self._step(w, memory, carry, self._gates(w, emb))
      logits = self._logits(w, carry[0], context, emb)
      if self.feed_sampled == 'argmax':
        own = jnp.argmax(logits, axis=-1)
      else:
        own = jax.random.categorical(choice_key, logits, axis=-1)
      return (carry, own.astype(inputs.dtype)), (logits, weights)

    xs = (inputs.T, reference) + keys
    own = jnp.zeros((batch,), inputs.dtype)
    _, (logits, weights) = jax.lax.scan(step, (memory.state, own), xs,
                                        unroll=self.unroll)
    return jnp.swapaxes(logits, 0, 1), jnp.swapaxes(weights, 0, 1)


class TranslationModel(Seq2Seq):
  """Seq2Seq with the training driver's model interface: called on a
  PairBatch's model_inputs (source, source_mask, inputs) and a carry that it
  passes through unchanged (pairs are independent: the carry is empty)."""

  def __call__(self, model_inputs, carry, *, train: bool):  # pylint: disable=arguments-differ
    source, source_mask, inputs = model_inputs
    return super().__call__(source, source_mask, inputs, train=train), carry

  @nn.nowrap
  def initial_carry(self, batch_size: int) -> tuple:
    del batch_size
    return ()

  @nn.nowrap
  def example_inputs(self, batch_size: int, seq_len: int):
    """Inputs of the right structure for init: ([B, T] ids, mask, [B, T] ids)."""
    ids = jnp.zeros((batch_size, seq_len), jnp.int32)
    return (ids, jnp.ones((batch_size, seq_len), jnp.float32), ids)
