"""The recurrent language model: embedding, stacked recurrent layers, softmax.

  tokens [B, T] -> embed [B, T, E] -> dropout_embed
    -> layer_0 -> dropout -> layer_1 -> ... -> layer_{L-1} -> dropout_output
    -> output projection -> logits [B, T, V] (f32)

The recurrent state is explicit (passed in, returned), so the caller can carry
it across BPTT windows or reset it. Dropout is on the non-recurrent
connections only (Zaremba et al.), with a fresh mask per time step; or, with
dropout_kind='locked' (AWD-LSTM), one mask per sequence shared over time.
AWD-LSTM's other regularizers (rnnlm_jax.models.regularizers), each off at 0:
dropout_embed_rows drops whole words of the embedding matrix, weight_drop is
DropConnect on every layer's kernel_hh.

For AR/TAR the last layer's outputs are sown into the 'intermediates'
collection when the caller makes it mutable (else sow is a no-op):
'last_raw' (before dropout_output) and 'last_dropped' (after), [B, T, H_last].

Params: 'embedding' [V, E]; 'layer_{l}' (see cells.RecurrentLayer); untied:
'output_kernel' [V, H] (one row per word, as the embedding) and 'output_bias'
[V]; tied: only 'output_bias' [V], the logits being h @ embedding.T.

Init (init_scheme): 'uniform' (Zaremba): every param ~ U(-init_scale,
init_scale) (init_scale 0: flax defaults). 'pytorch' (AWD-LSTM, which keeps PyTorch's
defaults for its LSTMs): each recurrent layer's weights and biases ~
U(-1/sqrt(H), 1/sqrt(H)) with H that layer's units; the embedding (and an
untied output kernel) ~ U(-init_scale, init_scale) (AWD's initrange 0.1);
the output bias 0.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.models import ops
from rnnlm_jax.models import regularizers

Carry = tuple[cells.Carry, ...]  # one per-layer carry tuple per layer
Dtype = Any


class RecurrentLM(nn.Module):
  """A stack of recurrent layers between an embedding and a softmax layer.

  Attributes (see the `model` section of rnnlm_jax/configs.py):
    vocab_size: V.
    cell: a name registered in cells.CELLS.
    num_layers: L.
    hidden_size: H of every layer, except the last one when tied.
    embed_size: E.
    tie_embeddings: logits = h @ embedding.T; the last layer then has E units
      (the AWD-LSTM convention) so that the shapes match.
    dropout_embed, dropout, dropout_output: dropout rates (see module doc).
    init_scale: > 0: every param ~ uniform(-s, s); 0: defaults. With
      init_scheme='pytorch' only the embedding and an untied output kernel.
    init_scheme: 'uniform' | 'pytorch' (module docstring).
    two_biases: PyTorch's b_ih and b_hh in every recurrent layer
      (cells.RecurrentLayer's bias_hh), instead of one bias.
    forget_bias: added to the LSTM forget-gate bias at init.
    dtype: matmul operand dtype (float32 | bfloat16); f32 accumulation, and
      params, state and logits stay f32.
    unroll: `lax.scan` unroll of each layer's recurrence.
    weight_grad_after_loop: the recurrence's custom backward (cells).
    dropout_kind: 'standard' (a mask per time step) | 'locked' (a mask per
      sequence, for the three rates above).
    dropout_embed_rows: rate of dropping whole embedding rows (AWD dropoute).
    weight_drop: DropConnect rate on each layer's kernel_hh (AWD wdrop).
    cell_options: (name, value) pairs passed to a cell's own layer class
      (config `model.<cell>`; empty for the gated cells).
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
  unroll: int = 1  # more only pays on accelerators (docs/performance.md)
  weight_grad_after_loop: bool = True  # see cells.RecurrentLayer
  dropout_kind: str = 'standard'
  dropout_embed_rows: float = 0.0
  weight_drop: float = 0.0
  cell_options: tuple[tuple[str, Any], ...] = ()  # the cell's own settings
  init_scheme: str = 'uniform'  # not `init`: that is Module.init
  two_biases: bool = False

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
        cells.initial_carry(self.cell, batch_size, size, dict(self.cell_options))
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
    table = embedding
    if train and self.dropout_embed_rows > 0:
      # Only the lookup sees the dropped rows; tied logits use the full matrix.
      table = regularizers.embedding_dropout(
          self.make_rng('dropout'), embedding, self.dropout_embed_rows)
    x = jnp.take(table, tokens, axis=0)  # [B, T, E] f32
    x = self._dropout(x, self.dropout_embed, train)
    new_carry = []
    for i, size in enumerate(self.layer_sizes()):
      if i > 0:
        x = self._dropout(x, self.dropout, train)
      x, layer_carry = self._layer(size, f'layer_{i}')(x, carry[i], train=train)
      new_carry.append(layer_carry)
    self.sow('intermediates', 'last_raw', x)
    x = self._dropout(x, self.dropout_output, train)
    self.sow('intermediates', 'last_dropped', x)
    return self._logits(x, embedding), tuple(new_carry)

  @nn.nowrap
  def _layer(self, size: int, name: str) -> nn.Module:
    """Recurrent layer `name` of `size` units: the cell's own layer class if
    it registered one, else the gated RecurrentLayer."""
    spec = cells.spec(self.cell)
    # PyTorch's RNN default: every weight and bias ~ U(+-1/sqrt(H)).
    scale = size ** -0.5 if self.init_scheme == 'pytorch' else self.init_scale
    common = dict(hidden_size=size, init_scale=scale,
                  forget_bias=self.forget_bias, dtype=self.dtype,
                  unroll=self.unroll, weight_drop=self.weight_drop,
                  weight_grad_after_loop=self.weight_grad_after_loop, name=name)
    if spec.layer is None:
      return cells.RecurrentLayer(cell=self.cell, two_biases=self.two_biases,
                                  **common)
    return spec.layer(**common, **dict(self.cell_options))

  @nn.nowrap
  def _dropout(self, x: jax.Array, rate: float, train: bool) -> jax.Array:
    """x [B, T, D] -> dropped x: a fresh mask per step, or one per row."""
    if self.dropout_kind == 'locked':
      if not train or rate <= 0:
        return x
      return regularizers.locked_dropout(self.make_rng('dropout'), x, rate)
    # nn.Dropout submodules, named in call order as before the option existed,
    # so that 'standard' draws exactly the same masks as it always did.
    return nn.Dropout(rate, deterministic=not train)(x)

  def _logits(self, h: jax.Array, embedding: jax.Array) -> jax.Array:
    """h [B, T, H_last] -> logits [B, T, V] f32 (in `dtype`, f32 accumulate)."""
    if self.tie_embeddings:
      kernel = embedding  # [V, E]
    else:
      # [V, H], the embedding's layout: XLA's CPU backward runs the output
      # matmuls faster than with [H, V] (docs/performance.md).
      kernel = self.param(
          'output_kernel',
          ops.weight_init(self.init_scale,
                          nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)),
          (self.vocab_size, h.shape[-1]))
    pytorch = self.init_scheme == 'pytorch'  # AWD: decoder bias 0
    bias_init = ops.bias_init(0.0 if pytorch else self.init_scale)
    bias = self.param('output_bias', bias_init, (self.vocab_size,))
    # A 2-D matmul: on [B, T, H] XLA's backward pass made a transposed copy of
    # d(logits) [B*T, V] before the weight-gradient matmul (docs/performance.md).
    rows = h.reshape(-1, h.shape[-1])
    logits = ops.matmul_nt(rows, kernel, self.dtype) + bias
    return logits.reshape(*h.shape[:-1], self.vocab_size)


def count_params(params: Any) -> int:
  """Total number of scalars in a params pytree."""
  return sum(int(jnp.size(leaf)) for leaf in jax.tree_util.tree_leaves(params))
