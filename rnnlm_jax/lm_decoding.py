"""Responses of a decoder-only LM to prompts: greedy, beam search, top-p.

The model is any LM of rnnlm_jax.models (RecurrentLM, XLSTMLM,
TransformerLM): `apply({'params': p}, tokens [B, T], carry, train=False) ->
(logits [B, T, V], carry)` and `initial_carry(B)`. Inputs and outputs are ids;
training/instruct_eval.py does the text around them for instruct runs.

Prompts of different lengths share a batch without changing any row's result.
They are right-padded to [B, P] and read under one jit in two parts:
  1. the first `head` positions, real in every row, in one model call;
  2. the rest one token per step in a `lax.scan`; once a row's prompt has
     ended its carry and last logits are kept, so its pads are never read.
For a recurrence, reading tokens in one call or one at a time is the same
computation. A TransformerLM's carry is its last memory_len token ids: in one
call over T tokens token t sees the memory and the t tokens before it in the
call, one at a time it sees the memory only, so the two agree only while the
memory holds the whole prefix. Its one-call part is therefore at most
memory_len tokens (and leaves room for the memory in the learned position
table); past memory_len tokens it reads and decodes with a sliding window of
memory_len tokens (a warning says so). memory_len=0 is refused: decoding token
by token would see the last token only.

Then the response is decoded one token per step in a `lax.while_loop` for at
most `max_len` steps, stopping when every row has emitted eos.

Outputs follow rnnlm_jax.decoding: Hypotheses with tokens [B, max_len] (the
response, its eos, pad after), length counting the eos, score = log_prob /
GNMT lp(length) with alpha = length_penalty (for greedy and top-p only
reported). Beam search is decoding.py's bookkeeping (beam_step: finished pool
of K, a row's result independent of the batch), fed by the LM's steps; so
beam 1 is greedy and a beam as wide as the number of possible outputs finds
the best-scoring one.

top-p: row r's random stream is fold_in(PRNGKey(seed), r), r the prompt's
index in the caller's list, then fold_in(step): a response does not depend
on batch_size or on the other prompts. log_prob is the model's (no
temperature, no filter).
"""

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rnnlm_jax import decoding, sampling
from rnnlm_jax.decoding import Hypotheses
from rnnlm_jax.models.transformer import TransformerLM

PAD_ID = decoding.PAD_ID
METHODS = ('greedy', 'beam', 'top_p')
_BUCKET = 8  # prompt widths round to multiples of this: fewer compiles


class Response(NamedTuple):
  """One prompt's response.

  ids: int32 [n], the response without its eos.
  score: log_prob / lp(length) (decoding's length penalty).
  log_prob: the tokens' log-probabilities summed, eos included.
  ended: it emitted eos (else it was cut at max_len).
  """
  ids: np.ndarray
  score: float
  log_prob: float
  ended: bool


def _apply(model, params, tokens, carry):
  logits, carry = model.apply({'params': params}, tokens, carry, train=False)
  return logits.astype(jnp.float32), carry


def _prefill(model, params, prompts, lengths, head):
  """Reads the prompts (module docstring). prompts int32 [B, P] right-padded,
  lengths int32 [B] (>= 1), head (static) <= min(lengths) -> (logits [B, V]
  after each row's last prompt token, carry)."""
  batch, width = prompts.shape
  carry = model.initial_carry(batch)
  logits = jnp.zeros((batch, model.vocab_size), jnp.float32)
  if head:
    all_logits, carry = _apply(model, params, prompts[:, :head], carry)
    logits = all_logits[:, -1]

  def step(state, t):
    logits, carry = state
    token = jax.lax.dynamic_slice_in_dim(prompts, t, 1, axis=1)  # [B, 1]
    new_logits, new_carry = _apply(model, params, token, carry)
    live = t < lengths
    keep = lambda new, old: jnp.where(
        live.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    return (keep(new_logits[:, 0], logits),
            jax.tree.map(keep, new_carry, carry)), None

  (logits, carry), _ = jax.lax.scan(step, (logits, carry),
                                    jnp.arange(head, width))
  return logits, carry


def _choose(logits, keys, step, temperature: float, top_p: float):
  """Token ids [B] from logits [B, V]: argmax (temperature 0) or a draw from
  the top-p nucleus, row b with its own key keys[b]."""
  if temperature <= 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  filtered = sampling.filter_logits(logits / temperature, 0, top_p)
  step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, step)
  return jax.vmap(jax.random.categorical)(step_keys, filtered).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=(
    'model', 'head', 'max_len', 'eos_id', 'temperature', 'top_p'))
def _sample_batch(model, params, prompts, lengths, rows, seed, length_penalty,
                  *, head, max_len, eos_id, temperature, top_p) -> Hypotheses:
  """Greedy (temperature 0) or top-p decoding of one batch; rows int32 [B]
  the prompts' indices (their random streams)."""
  batch = prompts.shape[0]
  logits, carry = _prefill(model, params, prompts, lengths, head)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.PRNGKey(seed), rows)

  def body(loop):
    i, logits, carry, tokens, log_prob, length, finished = loop
    token = _choose(logits, keys, i, temperature, top_p)
    live = ~finished
    token = jnp.where(live, token, PAD_ID)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    log_prob += jnp.where(live, jnp.take_along_axis(
        log_probs, token[:, None], axis=-1)[:, 0], 0.0)
    length += live.astype(jnp.int32)
    tokens = tokens.at[:, i].set(token)
    logits, carry = _apply(model, params, token[:, None], carry)
    return (i + 1, logits[:, 0], carry, tokens, log_prob, length,
            finished | (token == eos_id))

  def cond(loop):
    return (loop[0] < max_len) & ~jnp.all(loop[-1])

  loop = (jnp.int32(0), logits, carry,
          jnp.full((batch, max_len), PAD_ID, jnp.int32),
          jnp.zeros((batch,), jnp.float32), jnp.zeros((batch,), jnp.int32),
          jnp.zeros((batch,), bool))
  _, _, _, tokens, log_prob, length, _ = jax.lax.while_loop(cond, body, loop)
  score = log_prob / decoding.length_penalty_factor(length, length_penalty)
  return Hypotheses(tokens, score, log_prob, length)


@functools.partial(jax.jit, static_argnames=(
    'model', 'head', 'beam_size', 'max_len', 'eos_id'))
def _beam_batch(model, params, prompts, lengths, length_penalty, *, head,
                beam_size, max_len, eos_id) -> Hypotheses:
  """Beam search of one batch with decoding.py's beam bookkeeping."""
  batch, k = prompts.shape[0], beam_size
  logits, carry = _prefill(model, params, prompts, lengths, head)
  # Beam j of prompt b is row b*K + j.
  repeat = lambda x: jnp.repeat(x, k, axis=0)
  carry = jax.tree.map(repeat, carry)
  log_probs = jax.nn.log_softmax(repeat(logits), axis=-1).reshape(batch, k, -1)
  # The prefill already gave the first step's log-probs: `last` is unused
  # until beam_step sets it.
  beams = decoding.initial_beams(carry, batch, k, max_len, PAD_ID)

  def body(loop):
    beams, log_probs = loop
    # beams.state is the carry that produced log_probs: beam_step reorders it
    # by parent, then the chosen tokens are fed.
    beams = decoding.beam_step(beams, log_probs, beams.state, beam_size=k,
                               max_len=max_len, eos_id=eos_id,
                               length_penalty=length_penalty)
    logits, state = _apply(model, params, beams.last.reshape(-1, 1), beams.state)
    log_probs = jax.nn.log_softmax(logits[:, 0], axis=-1).reshape(batch, k, -1)
    return beams._replace(state=state), log_probs

  beams, _ = jax.lax.while_loop(
      lambda loop: decoding.beams_running(loop[0], max_len), body,
      (beams, log_probs))
  return decoding.best_hypotheses(beams)


def _one_call_len(model, common: int) -> int:
  """How many leading prompt tokens one model call may read exactly (module
  docstring), given `common` real in every row."""
  if isinstance(model, TransformerLM):
    return max(0, min(common, model.memory_len, model.max_len - model.memory_len))
  return common


def _check_inputs(model, prompts, method, max_len, beam_size, length_penalty,
                  top_p, temperature, batch_size) -> list[np.ndarray]:
  if method not in METHODS:
    raise ValueError(f'method={method!r} is not one of {METHODS}')
  decoding.check_arguments(max_len, length_penalty, beam_size)
  if batch_size < 1:
    raise ValueError(f'batch_size={batch_size} must be >= 1')
  if method == 'top_p' and not (0 < top_p <= 1 and temperature > 0):
    raise ValueError(f'top_p={top_p} must be in (0, 1] and temperature='
                     f'{temperature} > 0 (greedy is method="greedy")')
  out = []
  for i, prompt in enumerate(prompts):
    prompt = np.asarray(prompt)
    if prompt.ndim != 1 or prompt.size == 0 or not np.issubdtype(prompt.dtype, np.integer):
      raise ValueError(f'prompt {i} must be a non-empty 1-D int array, got '
                       f'{prompt.dtype} {prompt.shape}')
    if prompt.min() < 0 or prompt.max() >= model.vocab_size:
      raise ValueError(f'prompt {i} has ids outside [0, {model.vocab_size})')
    out.append(prompt.astype(np.int32))
  if isinstance(model, TransformerLM):
    if model.memory_len == 0:
      raise ValueError('model.transformer.memory_len=0: token-by-token decoding '
                       'would see only the last token; train with memory_len > 0')
    longest = max((len(p) for p in out), default=0) + max_len
    if longest > model.memory_len:
      logging.warning('prompt + response up to %d tokens > transformer '
                      'memory_len %d: a sliding window of %d tokens is seen',
                      longest, model.memory_len, model.memory_len)
  return out


def _round_up(n: int) -> int:
  return -(-n // _BUCKET) * _BUCKET


def _batches(lengths: np.ndarray, batch_size: int):
  """Index arrays of the batches: prompts sorted by length (less padding),
  each batch padded to one size with copies of its first prompt."""
  order = np.argsort(-lengths, kind='stable')
  size = min(batch_size, len(order))
  for start in range(0, len(order), size):
    index = order[start:start + size]
    yield index, np.concatenate([index, np.full(size - len(index), index[0])])


def respond_scored(model, params, prompts: Sequence[np.ndarray], *,
                   method: str = 'greedy', max_len: int, eos_id: int,
                   beam_size: int = 5, length_penalty: float = 0.6,
                   top_p: float = 0.9, temperature: float = 1.0, seed: int = 0,
                   batch_size: int = 32) -> list[Response]:
  """The response of each prompt (1-D int ids, any lengths), as Responses.

  method: 'greedy' | 'beam' (beam_size, ranked by the GNMT length penalty
  alpha=length_penalty) | 'top_p' (nucleus sampling at `temperature`, seeded).
  max_len: most response tokens (eos included). batch_size: prompts per jit
  call (results do not depend on it).
  """
  prompts = _check_inputs(model, prompts, method, max_len, beam_size,
                          length_penalty, top_p, temperature, batch_size)
  lengths = np.array([len(p) for p in prompts], np.int32)
  responses = [None] * len(prompts)
  for index, padded in _batches(lengths, batch_size):
    width = _round_up(int(lengths[padded].max()))
    batch = np.zeros((len(padded), width), np.int32)
    for b, i in enumerate(padded):
      batch[b, :lengths[i]] = prompts[i]
    head = _one_call_len(model, int(lengths[padded].min()) // _BUCKET * _BUCKET)
    common = dict(head=head, max_len=max_len, eos_id=eos_id)
    if method == 'beam':
      hyps = _beam_batch(model, params, batch, lengths[padded],
                         jnp.float32(length_penalty), beam_size=beam_size, **common)
    else:
      hyps = _sample_batch(
          model, params, batch, lengths[padded], padded.astype(np.int32),
          jnp.int32(seed), jnp.float32(length_penalty), **common,
          temperature=float(temperature) if method == 'top_p' else 0.0,
          top_p=float(top_p) if method == 'top_p' else 1.0)
    hyps = jax.tree.map(np.asarray, hyps)
    for b, i in enumerate(index):
      ids = hyps.tokens[b, :hyps.length[b]]
      ended = bool(len(ids)) and bool(ids[-1] == eos_id)
      responses[i] = Response(ids[:-1] if ended else ids, float(hyps.score[b]),
                              float(hyps.log_prob[b]), ended)
  return responses


def respond(model, params, prompts: Sequence[np.ndarray], *,
            method: str = 'greedy', max_len: int, eos_id: int,
            beam_size: int = 5, length_penalty: float = 0.6,
            top_p: float = 0.9, temperature: float = 1.0, seed: int = 0,
            batch_size: int = 32) -> list[np.ndarray]:
  """Response ids (without eos) of each prompt; see respond_scored."""
  return [r.ids for r in respond_scored(
      model, params, prompts, method=method, max_len=max_len, eos_id=eos_id,
      beam_size=beam_size, length_penalty=length_penalty, top_p=top_p,
      temperature=temperature, seed=seed, batch_size=batch_size)]
