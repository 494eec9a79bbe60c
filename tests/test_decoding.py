"""Greedy and beam search decoding of the encoder-decoder, and a tiny task
learned end to end."""

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnlm_jax import decoding
from rnnlm_jax.models import seq2seq
from rnnlm_jax.models.seq2seq import Seq2Seq

from test_seq2seq import random_params

BOS, EOS = 1, 2


def random_model(vocab: int, eos_bias: float = 0.0, seed: int = 0,
                 scale: float = 1.0, **overrides):
  """A small random model, params uniform(-scale, scale) (1: peaked, varied
  outputs), whose eos logit is raised by eos_bias."""
  config = dict(source_vocab_size=9, target_vocab_size=vocab, embed_size=8,
                encoder_hidden=6, decoder_hidden=7, attention_size=5, dropout=0.0)
  config.update(overrides)
  model = Seq2Seq(**config)
  source, mask = sources()
  params = random_params(model, source, mask, source[:, :2], seed=seed, scale=scale)
  params['output_bias'] = params['output_bias'].at[EOS].add(eos_bias)
  return model, params


LENGTHS = (4, 1, 3, 2, 4, 3)  # the shared test batch (shared compiles)


def sources(lengths=LENGTHS, width=5, seed=1):
  """Random source ids [B, width] (pad 0 after each length) and the mask."""
  rng = np.random.default_rng(seed)
  source = np.zeros((len(lengths), width), np.int32)
  for b, n in enumerate(lengths):
    source[b, :n] = rng.integers(3, 9, n)
  mask = (np.arange(width)[None, :] < np.array(lengths)[:, None]).astype(np.float32)
  return jnp.asarray(source), jnp.asarray(mask)


@pytest.mark.parametrize('alpha', [0.0, 0.8])
def test_beam_of_one_is_greedy(alpha):
  model, params = random_model(12)
  source, mask = sources()
  greedy = decoding.greedy(model, params, source, mask, 8, BOS, EOS, alpha)
  beam = decoding.beam_search(model, params, source, mask, 1, 8, BOS, EOS, alpha)
  lengths = np.asarray(greedy.length)
  assert lengths.min() < 8 and lengths.max() == 8  # both ways of ending occur
  np.testing.assert_array_equal(beam.tokens, greedy.tokens)
  np.testing.assert_array_equal(beam.length, greedy.length)
  np.testing.assert_allclose(beam.log_prob, greedy.log_prob, rtol=1e-5)
  np.testing.assert_allclose(beam.score, greedy.score, rtol=1e-5)
  # The decoders' log-probs are the teacher-forced ones of their output.
  scored = decoding.score(model, params, source, mask, greedy.tokens, BOS, EOS, alpha)
  np.testing.assert_allclose(scored.log_prob, greedy.log_prob, rtol=1e-4)
  np.testing.assert_array_equal(scored.length, greedy.length)


def every_output(vocab: int, max_len: int) -> np.ndarray:
  """Every possible output [N, max_len]: words then eos then pad, or
  max_len words without eos. N = sum_{n<max_len} (V-1)^n + (V-1)^max_len."""
  words = [t for t in range(vocab) if t != EOS]
  outputs = []
  for n in range(max_len + 1):
    for prefix in itertools.product(words, repeat=n):
      if n < max_len:
        outputs.append(list(prefix) + [EOS] + [0] * (max_len - n - 1))
      else:
        outputs.append(list(prefix))
  return np.array(outputs, np.int32)


@pytest.mark.parametrize('alpha', [0.0, 1.0])
def test_wide_beam_finds_the_best_output(alpha):
  vocab, max_len = 4, 3
  model, params = random_model(vocab, seed=2, scale=0.5)  # flatter: greedy errs
  source, mask = sources((3, 1), width=3, seed=2)
  outputs = every_output(vocab, max_len)
  assert len(outputs) == 40
  beam = decoding.beam_search(model, params, source, mask, len(outputs), max_len,
                              BOS, EOS, alpha)
  greedy = decoding.greedy(model, params, source, mask, max_len, BOS, EOS, alpha)
  for b in range(source.shape[0]):
    n = len(outputs)
    scored = decoding.score(model, params, jnp.repeat(source[b:b + 1], n, 0),
                            jnp.repeat(mask[b:b + 1], n, 0), jnp.asarray(outputs),
                            BOS, EOS, alpha)
    best = int(np.argmax(scored.score))
    np.testing.assert_array_equal(beam.tokens[b], outputs[best])
    np.testing.assert_allclose(beam.score[b], scored.score[best], rtol=1e-5)
    assert beam.score[b] >= greedy.score[b] - 1e-6
  assert np.any(beam.score > greedy.score + 1e-3)  # a case greedy gets wrong


def mixture_log_prob(members, source, mask, outputs) -> tuple[np.ndarray, np.ndarray]:
  """Reference (numpy, float64): log-prob of each output [N, L] under the
  per-token mean of the members' probabilities, and its length (eos
  included)."""
  outputs = np.asarray(outputs)
  inputs = np.concatenate([np.full((len(outputs), 1), BOS), outputs[:, :-1]], 1)
  per_member = []
  for model, params in members:
    logits, _ = model.apply({'params': params}, source, mask, jnp.asarray(inputs),
                            method=Seq2Seq.logits_and_attention)
    log_probs = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32)), np.float64)
    per_member.append(np.take_along_axis(log_probs, outputs[..., None], -1)[..., 0])
  mixture = np.log(np.mean(np.exp(np.stack(per_member)), axis=0))
  length = np.asarray(decoding.output_lengths(jnp.asarray(outputs), EOS))
  counted = np.arange(outputs.shape[1])[None, :] < length[:, None]
  return np.sum(np.where(counted, mixture, 0.0), -1), length


def test_ensemble_of_one_is_its_model():
  model, params = random_model(12)
  source, mask = sources()
  alone = decoding.beam_search(model, params, source, mask, 3, 8, BOS, EOS, 0.6)
  one = decoding.beam_search(decoding.Ensemble((model,)), (params,), source, mask,
                             3, 8, BOS, EOS, 0.6)
  np.testing.assert_array_equal(one.tokens, alone.tokens)
  np.testing.assert_array_equal(one.score, alone.score)


@pytest.mark.parametrize('alpha', [0.0, 1.0])
def test_ensemble_search_decodes_the_mean_of_the_members_probabilities(alpha):
  vocab, max_len = 4, 3
  members = [random_model(vocab, seed=2, scale=0.5),  # two architectures
             random_model(vocab, seed=5, scale=0.8, decoder_cell='lstm',
                          attention='dot', encoder_hidden=3, decoder_hidden=6)]
  ensemble = decoding.Ensemble(tuple(m for m, _ in members))
  params = tuple(p for _, p in members)
  source, mask = sources((3, 1), width=3, seed=2)
  outputs = every_output(vocab, max_len)
  beam = decoding.beam_search(ensemble, params, source, mask, len(outputs),
                              max_len, BOS, EOS, alpha)
  greedy = decoding.greedy(ensemble, params, source, mask, max_len, BOS, EOS, alpha)
  beam_of_one = decoding.beam_search(ensemble, params, source, mask, 1, max_len,
                                     BOS, EOS, alpha)
  np.testing.assert_array_equal(beam_of_one.tokens, greedy.tokens)
  for b in range(source.shape[0]):
    rows = lambda x: jnp.repeat(x[b:b + 1], len(outputs), 0)
    log_prob, length = mixture_log_prob(members, rows(source), rows(mask), outputs)
    expected = log_prob / ((5.0 + length) / 6.0) ** alpha
    best = int(np.argmax(expected))
    np.testing.assert_array_equal(beam.tokens[b], outputs[best])
    np.testing.assert_allclose(beam.score[b], expected[best], rtol=1e-4)
    scored = decoding.score(ensemble, params, rows(source), rows(mask),
                            jnp.asarray(outputs), BOS, EOS, alpha)
    np.testing.assert_allclose(scored.score, expected, rtol=1e-4, atol=1e-5)
    (g,) = [i for i, o in enumerate(outputs) if np.array_equal(o, greedy.tokens[b])]
    np.testing.assert_allclose(greedy.log_prob[b], log_prob[g], rtol=1e-4)
    for model, member_params in members:  # the mixture is neither member
      own = decoding.score(model, member_params, rows(source), rows(mask),
                           jnp.asarray(outputs), BOS, EOS, alpha)
      assert np.abs(np.asarray(own.score) - expected).max() > 0.05


def test_ensemble_needs_one_params_per_member():
  model, params = random_model(12)
  source, mask = sources()
  with pytest.raises(ValueError, match='Ensemble of 2 models needs a tuple'):
    decoding.greedy(decoding.Ensemble((model, model)), (params,), source, mask,
                    8, BOS, EOS)


def test_output_does_not_depend_on_the_batch():
  model, params = random_model(12)
  source, mask = sources()  # 6 sentences, padded to 5
  decode = lambda s, m: decoding.beam_search(model, params, s, m, 3, 8, BOS, EOS, 0.6)
  together = decode(source, mask)
  alone = decode(source[2:3, :3], mask[2:3, :3])  # one sentence, unpadded
  np.testing.assert_array_equal(alone.tokens[0], together.tokens[2])
  np.testing.assert_allclose(alone.score[0], together.score[2], rtol=1e-5)
  pair = decode(source[1:3, :4], mask[1:3, :4])  # two, other padding
  np.testing.assert_array_equal(pair.tokens, together.tokens[1:3])
  np.testing.assert_allclose(pair.score, together.score[1:3], rtol=1e-5)


def test_attention_weights_and_png(tmp_path):
  model, params = random_model(12)
  source, mask = sources()
  out = decoding.beam_search(model, params, source, mask, 3, 8, BOS, EOS, 0.6)
  weights = np.asarray(decoding.attention_weights(model, params, source, mask,
                                                  out.tokens, BOS, EOS))
  rows = np.arange(8)[None, :] < np.asarray(out.length)[:, None]
  assert not rows.all()  # some rows are past an end
  np.testing.assert_allclose(weights.sum(-1)[rows], 1.0, atol=1e-5)
  np.testing.assert_array_equal(weights[~rows], 0.0)
  pad = np.broadcast_to(np.asarray(mask)[:, None, :] == 0, weights.shape)
  np.testing.assert_array_equal(weights[pad], 0.0)
  b, n = 2, LENGTHS[2]
  one = decoding.attention_map(model, params, np.asarray(source[b, :n]), out.tokens[b],
                               BOS, EOS)
  assert one.shape == (int(out.length[b]), n)
  np.testing.assert_allclose(one, weights[b, :one.shape[0], :n], atol=1e-6)
  path = decoding.save_attention_png(
      str(tmp_path / 'a.png'), one, list('abc'), [str(t) for t in range(one.shape[0])])
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


class Batch(NamedTuple):
  """The paired-batch convention of the data side."""
  source: np.ndarray
  source_mask: np.ndarray
  inputs: np.ndarray
  targets: np.ndarray
  mask: np.ndarray


def reverse_task(rng, size, vocab=10, max_len=6) -> Batch:
  """Sources of 1..max_len random words (ids 3..vocab-1); target: reversed."""
  lengths = rng.integers(1, max_len + 1, size)
  source = np.zeros((size, max_len), np.int32)
  targets = np.zeros((size, max_len + 1), np.int32)
  for b, n in enumerate(lengths):
    source[b, :n] = rng.integers(3, vocab, n)
    targets[b, :n] = source[b, :n][::-1]
    targets[b, n] = EOS
  inputs = np.concatenate([np.full((size, 1), BOS, np.int32), targets[:, :-1]], 1)
  mask = (np.arange(max_len + 1)[None, :] <= lengths[:, None]).astype(np.float32)
  return Batch(source, (source > 0).astype(np.float32), inputs, targets, mask)


def make_train_step(model, optimizer):
  """A pure jitted step: (params, opt_state, batch, key) -> (params,
  opt_state, loss), the mean token cross-entropy."""

  def loss_fn(params, batch, key):
    logits = model.apply({'params': params}, batch.source, batch.source_mask,
                         batch.inputs, train=True, rngs={'dropout': key})
    nll = -seq2seq.token_log_probs(logits, batch.targets) * batch.mask
    return nll.sum() / batch.mask.sum()

  @jax.jit
  def step(params, opt_state, batch, key):
    loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return step


def test_learns_to_reverse():
  rng = np.random.default_rng(0)
  model = Seq2Seq(10, 10, embed_size=16, encoder_hidden=32, decoder_hidden=32,
                  attention_size=32, dropout=0.0)
  first = reverse_task(rng, 2)
  params = random_params(model, first.source, first.source_mask, first.inputs,
                         scale=0.1)
  steps = 200
  optimizer = optax.adam(optax.linear_schedule(1e-2, 1e-3, steps))
  opt_state = optimizer.init(params)
  step = make_train_step(model, optimizer)
  key = jax.random.PRNGKey(1)
  for _ in range(steps):
    key, sub = jax.random.split(key)
    params, opt_state, loss = step(params, opt_state, reverse_task(rng, 64), sub)
  test = reverse_task(np.random.default_rng(123), 200)
  out = decoding.greedy(model, params, jnp.asarray(test.source),
                        jnp.asarray(test.source_mask), 7, BOS, EOS)
  exact = np.mean(np.all(np.asarray(out.tokens) == test.targets, axis=1))
  assert exact >= 0.99, (exact, float(loss))


@pytest.mark.parametrize('args, message', [
    (dict(beam_size=0), 'beam_size=0'),
    (dict(max_len=0), 'max_len=0'),
    (dict(length_penalty=-1.0), 'length_penalty=-1.0'),
])
def test_bad_decoding_arguments_are_one_line_errors(args, message):
  call = dict(beam_size=2, max_len=4, bos_id=BOS, eos_id=EOS, length_penalty=0.6)
  call.update(args)
  source, mask = sources()
  with pytest.raises(ValueError, match=message):
    decoding.beam_search(None, None, source, mask, **call)
