"""Responses of decoder-only LMs: greedy, beam search and top-p against naive
step-by-step references, and padding that changes no row's result."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import decoding, lm_decoding
from rnnlm_jax.models.rnn_lm import RecurrentLM
from rnnlm_jax.models.transformer import TransformerLM

from test_seq2seq import random_params

EOS = 2
# Mixed lengths: rows of one batch end their prompts at different steps, and
# the longest one (9) is read partly in one call when alone.
PROMPTS = [np.array([5, 3, 7], np.int32), np.arange(3, 12, dtype=np.int32),
           np.array([4], np.int32), np.array([8, 1, 6, 3, 9], np.int32)]


@functools.lru_cache(maxsize=None)
def tiny(kind: str, vocab: int = 12, eos_bias: float | None = None):
  """A random LM (params uniform(-1, 1): peaked, varied outputs), its eos
  logit raised by eos_bias so that some responses end before max_len."""
  if kind == 'lstm':
    model = RecurrentLM(vocab_size=vocab, cell='lstm', num_layers=2,
                        hidden_size=8, embed_size=6)
  else:
    model = TransformerLM(vocab_size=vocab, num_layers=1, d_model=8,
                          num_heads=2, mlp_dim=16, memory_len=24, max_len=64)
  if eos_bias is None:
    eos_bias = 0.0 if kind == 'lstm' else 3.0  # a mix of ended and cut
  tokens = jnp.zeros((1, 3), jnp.int32)
  params = random_params(model, tokens, model.initial_carry(1), seed=1, scale=1.0)
  name = 'output_bias' if kind == 'lstm' else 'output'
  if kind == 'lstm':
    params[name] = params[name].at[EOS].add(eos_bias)
  else:
    params[name]['bias'] = params[name]['bias'].at[EOS].add(eos_bias)
  return model, params


WIDTH = 16  # the naive references read every sequence padded to this


@functools.partial(jax.jit, static_argnames=('model',))
def _padded_log_probs(model, params, tokens):
  logits, _ = model.apply({'params': params}, tokens[None],
                          model.initial_carry(1), train=False)
  return jax.nn.log_softmax(logits[0], axis=-1)


def _log_probs(model, params, tokens):
  """Log-probs [T, V] of the model reading `tokens` [T] from scratch (padded
  after the end, which a causal model does not look at: one compile)."""
  padded = np.zeros(WIDTH, np.int32)
  padded[:len(tokens)] = tokens
  return np.asarray(_padded_log_probs(model, params, jnp.asarray(padded)))[:len(tokens)]


def naive_greedy(model, params, prompt, max_len):
  """Argmax continuation, re-reading the whole prefix at every step."""
  seq, log_prob = list(prompt), 0.0
  for _ in range(max_len):
    log_probs = _log_probs(model, params, seq)[-1]
    token = int(np.argmax(log_probs))
    seq.append(token)
    log_prob += log_probs[token]
    if token == EOS:
      break
  return np.array(seq[len(prompt):]), log_prob


def sequence_log_prob(model, params, prompt, output):
  """log p(output | prompt), output ids (eos included if it ended)."""
  seq = np.concatenate([prompt, output]).astype(np.int32)
  log_probs = _log_probs(model, params, seq)
  rows = np.arange(len(prompt) - 1, len(seq) - 1)
  return float(np.sum(log_probs[rows, seq[len(prompt):]]))


MODELS = ['lstm', 'transformer']


@pytest.mark.parametrize('kind', MODELS)
def test_greedy_is_the_argmax_step_by_step(kind):
  model, params = tiny(kind)
  max_len = 6
  naive = [naive_greedy(model, params, prompt, max_len) for prompt in PROMPTS]
  # batch_size 4: one mixed batch (pads after the short prompts); 1: each
  # alone (the longest read partly in one call).
  for batch_size in (4, 1):
    got = lm_decoding.respond_scored(model, params, PROMPTS, max_len=max_len,
                                     eos_id=EOS, batch_size=batch_size,
                                     length_penalty=0.0)
    assert {r.ended for r in got} == {True, False}  # both ways of ending occur
    for response, (ids, log_prob) in zip(got, naive):
      ended = ids[-1] == EOS
      assert response.ended == ended
      np.testing.assert_array_equal(response.ids, ids[:-1] if ended else ids)
      assert response.log_prob == pytest.approx(log_prob, rel=1e-4)
      assert response.score == pytest.approx(log_prob, rel=1e-4)  # alpha 0


@pytest.mark.parametrize('kind', MODELS)
@pytest.mark.parametrize('method', ['beam', 'top_p'])  # greedy: the test above
def test_a_prompt_alone_equals_it_in_a_mixed_batch(kind, method):
  model, params = tiny(kind)
  options = dict(method=method, max_len=5, eos_id=EOS, beam_size=3, top_p=0.8,
                 seed=4)
  together = lm_decoding.respond_scored(model, params, PROMPTS, batch_size=4,
                                        **options)
  alone = lm_decoding.respond_scored(model, params, PROMPTS, batch_size=1,
                                     **options)
  for a, b in zip(together, alone):
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.score == pytest.approx(b.score, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize('kind', MODELS)
def test_beam_of_one_is_greedy(kind):
  model, params = tiny(kind)
  options = dict(max_len=6, eos_id=EOS, length_penalty=0.8, batch_size=4)
  greedy = lm_decoding.respond_scored(model, params, PROMPTS, **options)
  beam = lm_decoding.respond_scored(model, params, PROMPTS, method='beam',
                                    beam_size=1, **options)
  for g, b in zip(greedy, beam):
    np.testing.assert_array_equal(b.ids, g.ids)
    assert b.score == pytest.approx(g.score, rel=1e-5)


def test_a_beam_over_every_output_finds_the_best_one():
  vocab, max_len, alpha = 4, 3, 0.6
  model, params = tiny('lstm', vocab=vocab, eos_bias=0.5)
  # Every output: eos-ended within max_len, or cut at max_len.
  outputs = [list(p) + [EOS] for n in range(max_len)
             for p in itertools.product([t for t in range(vocab) if t != EOS], repeat=n)]
  outputs += [list(p) for p in itertools.product(range(vocab), repeat=max_len)
              if EOS not in p]
  prompts = PROMPTS[2:]
  beam = lm_decoding.respond_scored(
      model, params, [p % vocab for p in prompts], method='beam',
      beam_size=len(outputs), max_len=max_len, eos_id=EOS, length_penalty=alpha)
  greedy = lm_decoding.respond_scored(
      model, params, [p % vocab for p in prompts], max_len=max_len, eos_id=EOS,
      length_penalty=alpha)
  for prompt, b, g in zip(prompts, beam, greedy):
    prompt = prompt % vocab
    scores = [sequence_log_prob(model, params, prompt, np.array(o))
              / float(decoding.length_penalty_factor(len(o), alpha)) for o in outputs]
    best = outputs[int(np.argmax(scores))]
    np.testing.assert_array_equal(b.ids, best[:-1] if best[-1] == EOS else best)
    assert b.score == pytest.approx(max(scores), rel=1e-4)
    assert b.score >= g.score - 1e-5


def test_top_p_near_zero_is_greedy_and_one_varies_with_the_seed():
  model, params = tiny('lstm')
  options = dict(max_len=6, eos_id=EOS, batch_size=4)
  greedy = lm_decoding.respond(model, params, PROMPTS, **options)
  narrow = lm_decoding.respond(model, params, PROMPTS, method='top_p',
                               top_p=1e-9, **options)
  for g, n in zip(greedy, narrow):
    np.testing.assert_array_equal(n, g)
  draws = {tuple(lm_decoding.respond(model, params, PROMPTS[:1], method='top_p',
                                     top_p=1.0, seed=s, **options)[0])
           for s in range(6)}
  assert len(draws) > 1


def test_a_transformer_memory_shorter_than_the_prompt_slides(caplog):
  model, params = tiny('transformer')
  model = model.clone(memory_len=4)  # the same params: memory is not one
  prompts = PROMPTS + [np.arange(1, 9, dtype=np.int32)]
  options = dict(max_len=5, eos_id=EOS)
  together = lm_decoding.respond_scored(model, params, prompts, batch_size=5,
                                        **options)
  # Alone, a prompt of 8 (one bucket) would be read whole in one call, where
  # its last token saw all 8; one by one, as in the batch, it sees 4 + 1.
  alone = lm_decoding.respond_scored(model, params, prompts[-1:], **options)
  np.testing.assert_array_equal(alone[0].ids, together[-1].ids)
  assert alone[0].log_prob == pytest.approx(together[-1].log_prob, rel=1e-5)
  assert 'sliding window of 4 tokens' in caplog.text


def test_bad_input_is_a_one_line_error():
  model, params = tiny('lstm')
  respond = functools.partial(lm_decoding.respond, model, params, max_len=4,
                              eos_id=EOS)
  with pytest.raises(ValueError, match='prompt 1 must be a non-empty'):
    respond([np.array([3]), np.array([], np.int32)])
  with pytest.raises(ValueError, match='outside'):
    respond([np.array([3, 99])])
  with pytest.raises(ValueError, match="method='sample'"):
    respond(PROMPTS, method='sample')
  with pytest.raises(ValueError, match='top_p=0'):
    respond(PROMPTS, method='top_p', top_p=0.0)
  no_memory = TransformerLM(vocab_size=12, num_layers=1, d_model=8, num_heads=2,
                            mlp_dim=16, memory_len=0)
  with pytest.raises(ValueError, match='memory_len=0'):
    lm_decoding.respond(no_memory, {}, PROMPTS, max_len=4, eos_id=EOS)
