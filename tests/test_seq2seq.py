"""The encoder-decoder: bidirectional encoder, masking, the hoisted decoder."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax.models import cells
from rnnlm_jax.models import seq2seq
from rnnlm_jax.models.rnn_lm import count_params
from rnnlm_jax.models.seq2seq import Seq2Seq

V_SRC, V_TGT = 11, 13
LENGTHS = (5, 2, 4)  # ragged, and none as long as the padded batch (7)


def tiny(**overrides) -> Seq2Seq:
  config = dict(source_vocab_size=V_SRC, target_vocab_size=V_TGT, embed_size=8,
                encoder_hidden=6, decoder_hidden=7, attention_size=5, dropout=0.0)
  config.update(overrides)
  return Seq2Seq(**config)


def batch(seed: int = 0, lengths=LENGTHS, width: int = 7, target_len: int = 4):
  """Random source ids (real tokens first, pad 0 after), mask, decoder inputs."""
  rng = np.random.default_rng(seed)
  source = np.zeros((len(lengths), width), np.int32)
  for b, n in enumerate(lengths):
    source[b, :n] = rng.integers(3, V_SRC, n)
  mask = (np.arange(width)[None, :] < np.array(lengths)[:, None]).astype(np.float32)
  inputs = rng.integers(1, V_TGT, (len(lengths), target_len)).astype(np.int32)
  return jnp.asarray(source), jnp.asarray(mask), jnp.asarray(inputs)


def init(model, source, mask, inputs, seed=0):
  return random_params(model, source, mask, inputs, seed=seed)


def random_params(model, *args, seed=0, scale=0.3):
  """Params of the model's shapes drawn uniform(-scale, scale) in numpy:
  what init_scale=scale draws, without compiling the init (seconds each)."""
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), *args, train=False))['params']
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: jnp.asarray(rng.uniform(-scale, scale, s.shape), s.dtype), shapes)


@functools.lru_cache(maxsize=None)
def jitted(model):
  """model.apply under jit (op-by-op dispatch of the eager one is slow)."""
  return jax.jit(model.apply, static_argnames=('train', 'method'))


def test_bidirectional_encoder_matches_each_sequence_alone():
  cell = 'gru'
  model = tiny(encoder_cell=cell)
  source, mask, inputs = batch()
  params = init(model, source, mask, inputs)
  memory = jitted(model)({'params': params}, source, mask, method=Seq2Seq.encode)
  h = model.encoder_hidden
  layer = jitted(cells.RecurrentLayer(cell=cell, hidden_size=h))
  for b, n in enumerate(LENGTHS):
    x = params['source_embedding'][source[b, :n]][None]  # [1, n, E] unpadded
    carry = cells.initial_carry(cell, 1, h)
    forward, _ = layer({'params': params['forward_layers_0']}, x, carry)
    backward, _ = layer({'params': params['backward_layers_0']}, x[:, ::-1], carry)
    backward = backward[:, ::-1]
    np.testing.assert_allclose(memory.values[b, :n, :h], forward[0], atol=1e-5)
    np.testing.assert_allclose(memory.values[b, :n, h:], backward[0], atol=1e-5)
    np.testing.assert_array_equal(memory.values[b, n:], 0.0)
    # The summary: the forward state at the last real token, the backward
    # state after reading the whole sequence (at position 0).
    np.testing.assert_allclose(memory.summary[b, :h], forward[0, -1], atol=1e-5)
    np.testing.assert_allclose(memory.summary[b, h:], backward[0, 0], atol=1e-5)


def test_reverse_padded_reverses_within_length_and_is_an_involution():
  x = jnp.arange(2 * 5).reshape(2, 5)[..., None]
  lengths = jnp.array([3, 5])
  reversed_ = seq2seq.reverse_padded(x, lengths)[..., 0]
  np.testing.assert_array_equal(reversed_, [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]])
  twice = seq2seq.reverse_padded(seq2seq.reverse_padded(x, lengths), lengths)
  np.testing.assert_array_equal(twice, x)


def test_padding_changes_no_output():
  model = tiny(encoder_layers=2)
  source, mask, inputs = batch()
  params = init(model, source, mask, inputs)
  apply = jitted(model)
  logits = apply({'params': params}, source, mask, inputs, train=False)
  # Other pad ids, and another embedding row for the pad id.
  noise = jax.random.randint(jax.random.PRNGKey(3), source.shape, 1, V_SRC)
  other_source = jnp.where(mask > 0, source, noise)
  other = dict(params)
  other['source_embedding'] = params['source_embedding'].at[0].set(50.0)
  other_logits = apply({'params': other}, other_source, mask, inputs, train=False)
  assert not np.array_equal(other_source, source)
  np.testing.assert_allclose(other_logits, logits, atol=1e-6, rtol=1e-6)


# The default model (GRU, additive) is covered by test_decoding: its decoders
# (decode_step) and teacher-forced scoring (__call__) give the same log-probs.
@pytest.mark.parametrize('overrides', [
    dict(decoder_cell='lstm', encoder_cell='lstm', attention='general',
         tie_embeddings=True),
    dict(attention='none', bidirectional=False),
    dict(attention='dot', encoder_hidden=7, bidirectional=False, encoder_layers=2),
])
def test_decode_step_reproduces_teacher_forcing(overrides):
  model = tiny(**overrides)
  source, mask, inputs = batch()
  params = init(model, source, mask, inputs)
  variables = {'params': params}
  apply = jitted(model)
  logits = apply(variables, source, mask, inputs, train=False)
  memory = apply(variables, source, mask, method=Seq2Seq.encode)
  state = memory.state
  for t in range(inputs.shape[1]):
    step_logits, new_state, weights = apply(
        variables, memory, state, inputs[:, t], method=Seq2Seq.decode_step)
    np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5, rtol=1e-5)
    # The split (hoisted) input kernel is the RecurrentLayer step on
    # [embedding ; context] (the unhoisted reference).
    if model.attention == 'none':
      context = memory.summary
    else:
      context = jnp.einsum('bs,bsd->bd', weights, memory.values)
    x = jnp.concatenate([params['target_embedding'][inputs[:, t]], context], -1)
    reference, _ = cells.cell_step(model.decoder_cell, params['decoder_params'], state, x)
    for got, want in zip(new_state, reference):
      np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    state = new_state


@pytest.mark.parametrize('kind', ['additive', 'dot', 'general', 'none'])
def test_attention_weights_sum_to_one_over_real_positions(kind):
  model = tiny(attention=kind, encoder_hidden=7 if kind == 'dot' else 6,
               bidirectional=kind != 'dot')
  source, mask, inputs = batch()
  params = init(model, source, mask, inputs)
  logits, weights = jitted(model)({'params': params}, source, mask, inputs,
                                  method=Seq2Seq.logits_and_attention)
  assert logits.shape == inputs.shape + (V_TGT,)
  assert weights.shape == inputs.shape + source.shape[1:]
  assert np.all(np.isfinite(logits))
  pad = np.broadcast_to(np.asarray(mask)[:, None, :] == 0, weights.shape)
  np.testing.assert_array_equal(np.asarray(weights)[pad], 0.0)
  if kind == 'none':  # no attention: the context is the summary
    np.testing.assert_array_equal(weights, 0.0)
  else:
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.asarray(weights)[~pad] > 0)


def test_scheduled_sampling():
  source, mask, inputs = batch()
  model = tiny(dropout=0.3)
  params = init(model, source, mask, inputs)
  other = inputs.at[:, 1:].set((inputs[:, 1:] + 1) % V_TGT)
  run = lambda m, x, key=1: jitted(m)({'params': params}, source, mask, x, train=True,
                                      rngs={'dropout': jax.random.PRNGKey(key)})
  # Ratio 0, argmax: only inputs[:, 0] is ever read.
  never = model.clone(teacher_forcing=0.0)
  np.testing.assert_allclose(run(never, other), run(never, inputs), atol=1e-6)
  # A ratio in between reads some of them; deterministic per rng, and the
  # rng (dropout, coins, samples) matters.
  half = model.clone(teacher_forcing=0.5, feed_sampled='sample')
  np.testing.assert_array_equal(run(half, inputs), run(half, inputs))
  assert not np.allclose(run(half, other), run(half, inputs))
  assert not np.allclose(run(half, inputs, 2), run(half, inputs))


@pytest.mark.parametrize('overrides, message', [
    (dict(attention='dot'), "attention='dot' needs"),
    (dict(attention='luong'), 'attention='),
    (dict(decoder_cell='gruu'), 'decoder_cell='),
    (dict(teacher_forcing=1.5), 'teacher_forcing='),
])
def test_bad_config_is_one_line_error(overrides, message):
  source, mask, inputs = batch()
  with pytest.raises(ValueError, match=message):
    init(tiny(**overrides), source, mask, inputs)


def tutorial_param_count(v_src, v_tgt, e, h_enc, h_dec):
  """bentrevett's attention model's shapes, with this codebase's GRU (one
  bias_ih [3H] and bias_hn [H], where PyTorch has two [3H] biases)."""
  gru = lambda d, h: d * 3 * h + h * 3 * h + 3 * h + h
  k = 2 * h_enc
  return (v_src * e + 2 * gru(e, h_enc) + (k * h_dec + h_dec)  # encoder, bridge
          + (k * h_dec + h_dec * h_dec + h_dec + h_dec)  # additive attention
          + v_tgt * e + gru(e + k, h_dec)  # decoder
          + (h_dec + k + e) * v_tgt + v_tgt)  # output layer


def test_tutorial_shape_param_count():
  model = Seq2Seq(7853, 5893)  # the defaults are the tutorial's shape
  source = jnp.zeros((2, 5), jnp.int32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), source,
                                             jnp.ones((2, 5)), source, train=False))
  assert count_params(shapes['params']) == tutorial_param_count(7853, 5893, 256, 512, 512)


@pytest.mark.parametrize('tied', [False, True])
def test_default_init_starts_near_uniform_prediction(tied):
  """At the default init the first loss is ~log V, also when the output
  layer is the target embedding (whose rows then set the logits' scale)."""
  vocab = 500
  model = tiny(target_vocab_size=vocab, embed_size=64, tie_embeddings=tied)
  source, mask, _ = batch()
  inputs = jnp.asarray(np.random.default_rng(1).integers(3, vocab, (3, 6)), jnp.int32)
  params = model.init(jax.random.PRNGKey(0), source, mask, inputs, train=False)
  logits = jitted(model)(params, source, mask, inputs, train=False)
  loss = -jnp.mean(seq2seq.token_log_probs(logits, inputs))
  assert abs(float(loss) - np.log(vocab)) < 1.0, (float(loss), np.log(vocab))
