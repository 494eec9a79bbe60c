"""Decoding an encoder-decoder (models.Seq2Seq, TransformerSeq2Seq): greedy, beam search, teacher-forced scoring,
attention maps.

Everything runs under one jit per shape: the source is encoded once, then the
decoder steps inside a `lax.while_loop` (no host round trip per token) for
at most `max_len` steps, stopping early when every sentence is done.

Output conventions (all functions): tokens int32 [B, max_len], the
hypothesis, then eos (if it ended before max_len), then pad (0). A
hypothesis's length counts its tokens including the eos. Any target id may be
emitted (pad and bos are not masked; a trained model gives them ~0 mass).

Length normalization (GNMT, Wu et al. 2016, as in OpenNMT's 'wu' and T5X):
  score = log p(y) / lp(|y|),  lp(n) = ((5 + n) / 6) ** alpha
alpha = `length_penalty` >= 0; alpha = 0 ranks by the raw log-probability.
(length_penalty is traced, not static: changing it does not recompile.)

Beam search keeps finished hypotheses aside, as fairseq does: of the 2K best
(beam, token) extensions, the eos-ended ones among the top K are finished
(scored with the penalty, kept in a pool of K), the best K that did not end
continue. A sentence is done when K hypotheses finished; its later
candidates are ignored, so a sentence's result does not depend on what else
is in the batch. At the last step (max_len) the top K end unfinished. The
best of the pool is returned. Consequences, tested: beam 1 is greedy
decoding (same ids and score, any alpha); a beam as large as the number of
possible outputs finds the best-scoring one. Beams start from one live
hypothesis (the others at -1e9), so the K hypotheses are distinct.

Ensembles: pass `Ensemble((model_a, model_b, ...))` as the model and a tuple
of their params. Each step's next-token distribution is then the mean of the
members' probabilities, log(1/M sum_m p_m) (as fairseq's EnsembleModel);
greedy, beam search and `score` use it alike. The members may differ in
architecture but must share the source and target vocabularies.
"""

import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnnlm_jax.models import seq2seq

PAD_ID = 0
NEG = -1e9  # the log-prob of an empty beam slot (finite: no inf - inf)


class Hypotheses(NamedTuple):
  """Decoder output, one hypothesis per sentence.

  tokens:   int32 [B, max_len] (hypothesis, eos, pad after).
  score:    f32 [B], log_prob / lp(length) (see the module docstring).
  log_prob: f32 [B], sum of the tokens' log-probabilities (eos included).
  length:   int32 [B], tokens including the eos.
  """
  tokens: jax.Array
  score: jax.Array
  log_prob: jax.Array
  length: jax.Array


def length_penalty_factor(length: jax.Array, alpha: float) -> jax.Array:
  """GNMT's lp(n) = ((5 + n) / 6) ** alpha, f32."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def check_arguments(max_len: int, length_penalty: float, beam_size: int = 1) -> None:
  if max_len < 1:
    raise ValueError(f'max_len={max_len} must be >= 1')
  if beam_size < 1:
    raise ValueError(f'beam_size={beam_size} must be >= 1')
  if length_penalty < 0:
    raise ValueError(f'length_penalty={length_penalty} must be >= 0')


class Ensemble(NamedTuple):
  """Encoder-decoders decoded as one model (see the module docstring); its
  params are a tuple, one entry per member."""
  members: tuple


def _members(model) -> tuple:
  return model.members if isinstance(model, Ensemble) else (model,)


def _member_params(model, params) -> tuple:
  if not isinstance(model, Ensemble):
    return (params,)
  if not isinstance(params, (tuple, list)) or len(params) != len(model.members):
    raise ValueError(f'an Ensemble of {len(model.members)} models needs a tuple '
                     'of as many params')
  return tuple(params)


def check_steps(model, max_len: int) -> None:
  """A decoder with a fixed-size cache (TransformerSeq2Seq: `max_len` slots)
  emits at most that many tokens."""
  for member in _members(model):
    slots = getattr(member, 'max_len', None)
    if slots is not None and max_len > slots:
      raise ValueError(f'max_len={max_len} decoding steps exceed the model\'s '
                       f'{slots} positions (model.transformer.max_len)')


def _mean_of_probs(log_probs: Sequence[jax.Array]) -> jax.Array:
  """log(1/M sum_m exp(log_probs[m])); one member's log-probs unchanged."""
  if len(log_probs) == 1:
    return log_probs[0]
  return (jax.nn.logsumexp(jnp.stack(log_probs), axis=0)
          - jnp.log(float(len(log_probs))))


def _encode(model, params, source, source_mask) -> tuple:
  """One memory per member."""
  return tuple(m.apply({'params': p}, source, source_mask, method=type(m).encode)
               for m, p in zip(_members(model), _member_params(model, params)))


def _initial_state(memories: tuple) -> tuple:
  return tuple(memory.state for memory in memories)


def _log_probs(model, params, memories, states, token):
  """One step -> (log-probs [N, V] f32, new states)."""
  log_probs, new_states = [], []
  for m, p, memory, state in zip(_members(model), _member_params(model, params),
                                 memories, states):
    logits, state, _ = m.apply({'params': p}, memory, state, token,
                               method=type(m).decode_step)
    log_probs.append(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1))
    new_states.append(state)
  return _mean_of_probs(log_probs), tuple(new_states)


def greedy(model, params, source: jax.Array, source_mask: jax.Array,
           max_len: int, bos_id: int, eos_id: int,
           length_penalty: float = 0.0) -> Hypotheses:
  """Argmax decoding. source int [B, S], source_mask [B, S] -> Hypotheses.

  length_penalty only changes the reported `score` (compare with
  beam_search's).
  """
  check_arguments(max_len, length_penalty)
  check_steps(model, max_len)
  return _greedy(model, params, source, source_mask, max_len, bos_id, eos_id,
                 length_penalty)


@functools.partial(jax.jit, static_argnames=(
    'model', 'max_len', 'bos_id', 'eos_id'))
def _greedy(model, params, source, source_mask, max_len, bos_id, eos_id,
            length_penalty):
  batch = source.shape[0]
  memory = _encode(model, params, source, source_mask)

  def body(loop):
    i, state, token, tokens, log_prob, length, finished = loop
    log_probs, state = _log_probs(model, params, memory, state, token)
    best = jnp.argmax(log_probs, axis=-1).astype(jnp.int32)
    live = ~finished
    token = jnp.where(live, best, PAD_ID)
    log_prob += jnp.where(live, jnp.take_along_axis(
        log_probs, best[:, None], axis=-1)[:, 0], 0.0)
    length += live.astype(jnp.int32)
    tokens = tokens.at[:, i].set(token)
    return (i + 1, state, token, tokens, log_prob, length,
            finished | (token == eos_id))

  def cond(loop):
    return (loop[0] < max_len) & ~jnp.all(loop[-1])

  loop = (jnp.int32(0), _initial_state(memory), jnp.full((batch,), bos_id, jnp.int32),
          jnp.full((batch, max_len), PAD_ID, jnp.int32),
          jnp.zeros((batch,), jnp.float32), jnp.zeros((batch,), jnp.int32),
          jnp.zeros((batch,), bool))
  _, _, _, tokens, log_prob, length, _ = jax.lax.while_loop(cond, body, loop)
  score = log_prob / length_penalty_factor(length, length_penalty)
  return Hypotheses(tokens, score, log_prob, length)


class Beams(NamedTuple):
  """The while_loop state of a beam search (B sentences, K beams, L steps);
  shared with the decoder-only LM's (lm_decoding.py)."""
  step: jax.Array         # int32 []
  state: Any              # decoder carry, leaves [B*K, H]
  tokens: jax.Array       # int32 [B, K, L] live hypotheses
  log_prob: jax.Array     # f32 [B, K]
  last: jax.Array         # int32 [B, K] the token each live beam feeds next
  done_tokens: jax.Array  # int32 [B, K, L] finished pool, best first
  done_score: jax.Array   # f32 [B, K]
  done_log_prob: jax.Array  # f32 [B, K]
  done_length: jax.Array  # int32 [B, K]
  num_done: jax.Array     # int32 [B] hypotheses finished so far


def _gather(x: jax.Array, index: jax.Array) -> jax.Array:
  """x [B, N, ...], index int [B, M] -> [B, M, ...] along axis 1."""
  index = index.reshape(index.shape + (1,) * (x.ndim - 2))
  return jnp.take_along_axis(x, index, axis=1)


def beam_step(beams: Beams, log_probs: jax.Array, state: Any, *,
              beam_size: int, max_len: int, eos_id: int,
              length_penalty: float) -> Beams:
  """Extends the live beams by one token; log_probs [B, K, V], state the
  carry after this step (leaves [B*K, H])."""
  batch, k, vocab = log_probs.shape
  i = beams.step
  candidates = (beams.log_prob[..., None] + log_probs).reshape(batch, k * vocab)
  top_lp, top = jax.lax.top_k(candidates, min(2 * k, k * vocab))  # [B, 2K]
  beam, token = top // vocab, (top % vocab).astype(jnp.int32)
  seqs = _gather(beams.tokens, beam)
  seqs = jnp.where(jnp.arange(max_len) == i, token[..., None], seqs)
  is_eos = token == eos_id

  # Finished: eos-ended (or cut at max_len) among the top K, real (not an
  # empty slot), in a sentence that is not done yet.
  in_top = jnp.arange(top.shape[1]) < k
  ends = in_top & (is_eos | (i == max_len - 1)) & (top_lp > NEG / 2)
  ends &= (beams.num_done < k)[:, None]
  score = jnp.where(ends, top_lp / length_penalty_factor(i + 1, length_penalty), NEG)
  pool_score = jnp.concatenate([beams.done_score, score], axis=1)
  done_score, keep = jax.lax.top_k(pool_score, k)  # ties: older first
  cat = lambda old, new: _gather(jnp.concatenate([old, new], axis=1), keep)
  done_tokens = cat(beams.done_tokens, seqs)
  done_log_prob = cat(beams.done_log_prob, top_lp)
  done_length = cat(beams.done_length, jnp.full(top_lp.shape, i + 1, jnp.int32))

  # Live: the best K extensions that did not end in eos.
  log_prob, alive = jax.lax.top_k(jnp.where(is_eos, NEG, top_lp), k)
  parent = _gather(beam, alive)  # [B, K] index of the beam each continues
  rows = (jnp.arange(batch)[:, None] * k + parent).reshape(-1)
  state = jax.tree.map(lambda c: c[rows], state)
  return Beams(i + 1, state, _gather(seqs, alive), log_prob,
               _gather(token, alive), done_tokens, done_score, done_log_prob,
               done_length, beams.num_done + jnp.sum(ends, axis=1))


def initial_beams(state: Any, batch: int, beam_size: int, max_len: int,
                  first_token: int) -> Beams:
  """The beams before the first step: state leaves [B*K, ...] (beam j of
  sentence b is row b*K + j), one live hypothesis per sentence (the others at
  NEG, so the K hypotheses stay distinct), `first_token` fed next."""
  k = beam_size
  empty = jnp.full((batch, k, max_len), PAD_ID, jnp.int32)
  return Beams(
      step=jnp.int32(0), state=state, tokens=empty,
      log_prob=jnp.full((batch, k), NEG, jnp.float32).at[:, 0].set(0.0),
      last=jnp.full((batch, k), first_token, jnp.int32), done_tokens=empty,
      done_score=jnp.full((batch, k), NEG, jnp.float32),
      done_log_prob=jnp.full((batch, k), NEG, jnp.float32),
      done_length=jnp.zeros((batch, k), jnp.int32),
      num_done=jnp.zeros((batch,), jnp.int32))


def beams_running(beams: Beams, max_len: int) -> jax.Array:
  """The while_loop condition: steps left and a sentence not done."""
  k = beams.log_prob.shape[1]
  return (beams.step < max_len) & ~jnp.all(beams.num_done >= k)


def best_hypotheses(beams: Beams) -> Hypotheses:
  """The best finished hypothesis of each sentence."""
  return Hypotheses(beams.done_tokens[:, 0], beams.done_score[:, 0],
                    beams.done_log_prob[:, 0], beams.done_length[:, 0])


def beam_search(model, params, source: jax.Array, source_mask: jax.Array,
                beam_size: int, max_len: int, bos_id: int, eos_id: int,
                length_penalty: float = 0.6) -> Hypotheses:
  """Beam search (see the module docstring): source int [B, S],
  source_mask [B, S] -> the best Hypotheses of each sentence."""
  check_arguments(max_len, length_penalty, beam_size)
  check_steps(model, max_len)
  return _beam_search(model, params, source, source_mask, beam_size, max_len,
                      bos_id, eos_id, length_penalty)


@functools.partial(jax.jit, static_argnames=(
    'model', 'beam_size', 'max_len', 'bos_id', 'eos_id'))
def _beam_search(model, params, source, source_mask, beam_size, max_len,
                 bos_id, eos_id, length_penalty):
  batch, k = source.shape[0], beam_size
  memory = _encode(model, params, source, source_mask)
  # Beam j of sentence b is row b*K + j.
  memory = jax.tree.map(lambda x: jnp.repeat(x, k, axis=0), memory)
  beams = initial_beams(_initial_state(memory), batch, k, max_len, bos_id)

  def body(beams):
    log_probs, state = _log_probs(model, params, memory, beams.state,
                                  beams.last.reshape(-1))
    return beam_step(beams, log_probs.reshape(batch, k, -1), state,
                     beam_size=k, max_len=max_len, eos_id=eos_id,
                     length_penalty=length_penalty)

  beams = jax.lax.while_loop(lambda beams: beams_running(beams, max_len), body,
                             beams)
  return best_hypotheses(beams)


def output_lengths(tokens: jax.Array, eos_id: int) -> jax.Array:
  """tokens int [B, L] -> tokens up to and including the first eos [B]
  (L where there is none)."""
  is_eos = tokens == eos_id
  first = jnp.argmax(is_eos, axis=-1)
  length = jnp.where(jnp.any(is_eos, axis=-1), first + 1, tokens.shape[-1])
  return length.astype(jnp.int32)


def _teacher_forced(model, params, source, source_mask, tokens, bos_id):
  inputs = jnp.concatenate(
      [jnp.full((tokens.shape[0], 1), bos_id, tokens.dtype), tokens[:, :-1]], axis=1)
  return model.apply({'params': params}, source, source_mask, inputs,
                     method=type(model).logits_and_attention)


@functools.partial(jax.jit, static_argnames=('model', 'bos_id', 'eos_id'))
def score(model, params, source: jax.Array, source_mask: jax.Array,
          tokens: jax.Array, bos_id: int, eos_id: int,
          length_penalty: float = 0.0) -> Hypotheses:
  """Teacher-forced scoring of given outputs (same conventions as the
  decoders: tokens [B, L], scored up to the first eos) -> Hypotheses."""
  per_token = _mean_of_probs([
      seq2seq.token_log_probs(
          _teacher_forced(m, p, source, source_mask, tokens, bos_id)[0], tokens)
      for m, p in zip(_members(model), _member_params(model, params))])
  length = output_lengths(tokens, eos_id)
  mask = jnp.arange(tokens.shape[1])[None, :] < length[:, None]
  log_prob = jnp.sum(jnp.where(mask, per_token, 0.0), -1)
  return Hypotheses(tokens, log_prob / length_penalty_factor(length, length_penalty),
                    log_prob, length)


@functools.partial(jax.jit, static_argnames=('model', 'bos_id', 'eos_id'))
def attention_weights(model, params, source: jax.Array, source_mask: jax.Array,
                      tokens: jax.Array, bos_id: int, eos_id: int) -> jax.Array:
  """The attention of the decoder while it produced `tokens` (a greedy or
  beam output [B, L]) -> weights [B, L, S], rows past the output's end 0.

  Re-running the decoder teacher-forced on its own output visits the same
  states as the search did, so these are the search's weights.
  """
  if isinstance(model, Ensemble):
    raise ValueError('attention weights are one model\'s: pass a member of '
                     'the Ensemble')
  _, weights = _teacher_forced(model, params, source, source_mask, tokens, bos_id)
  length = output_lengths(tokens, eos_id)
  rows = jnp.arange(tokens.shape[1])[None, :, None] < length[:, None, None]
  return jnp.where(rows, weights, 0.0)


def attention_map(model, params, source: np.ndarray, tokens: np.ndarray,
                  bos_id: int, eos_id: int, pad_multiple: int = 8) -> np.ndarray:
  """One sentence: source ids [S] (unpadded) and its decoded ids [L] ->
  weights [T_out, S] (T_out = output length with the eos) for a heat map.

  Both are padded to a multiple of pad_multiple (masked source, pad tokens
  after the output), so that sentences of similar length share one compile.
  A model with a fixed number of positions (`max_len`) sees at most that
  many output tokens: T_out is then cut to it.
  """
  limit = getattr(model, 'max_len', None)
  tokens = np.asarray(tokens, np.int32)[:limit]
  ends = np.flatnonzero(tokens == eos_id)
  length = int(ends[0]) + 1 if len(ends) else len(tokens)

  def width(n):  # padded, within the model's positions (a longer source is
    padded = -(-n // pad_multiple) * pad_multiple  # the model's error)
    return min(padded, max(limit, n)) if limit else padded

  src = np.zeros((1, width(len(source))), np.int32)
  src[0, :len(source)] = source
  mask = (np.arange(src.shape[1]) < len(source)).astype(np.float32)[None]
  out = np.full((1, width(length)), PAD_ID, np.int32)
  out[0, :length] = tokens[:length]
  weights = attention_weights(model, params, jnp.asarray(src), jnp.asarray(mask),
                              jnp.asarray(out), bos_id, eos_id)
  return np.asarray(weights[0, :length, :len(source)])


def save_attention_png(path: str, weights: np.ndarray,
                       source_words: Sequence[str],
                       output_words: Sequence[str], title: str = '') -> str:
  """Writes the heat map of weights [T_out, S] (rows: output words, columns:
  source words) as a PNG with matplotlib's Agg backend; returns path."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  weights = np.asarray(weights)
  if weights.shape != (len(output_words), len(source_words)):
    raise ValueError(f'weights {weights.shape} do not match {len(output_words)} '
                     f'output x {len(source_words)} source words')
  fig = Figure(figsize=(1.0 + 0.4 * len(source_words), 1.0 + 0.4 * len(output_words)),
               dpi=100)
  FigureCanvasAgg(fig)  # Agg, whatever pyplot's default backend is
  ax = fig.add_subplot(1, 1, 1)
  ax.imshow(weights, cmap='bone', vmin=0.0, vmax=1.0, aspect='auto')
  ax.set_xticks(range(len(source_words)), source_words, rotation=90)
  ax.set_yticks(range(len(output_words)), output_words)
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, format='png')
  return path
