"""Scoring a token stream: perplexity / bits per token, by one loop for every
evaluation method (config `eval.method`, a name of METHODS).

  'static'   plain scoring with the trained params.
  'dynamic'  dynamic evaluation (Krause et al. 2018, the SGD form): each window
             is scored with the current params, THEN the params take one SGD
             step on that window's mean token NLL (eval.dynamic.lr) plus a
             pull back to the trained params (eval.dynamic.decay), so the
             model adapts to the stream as it reads it; nothing is saved.
  'cache'    the neural cache pointer (Grave et al. 2017; RNN only): the last
             eval.cache.size (last-layer state h_i, next word x_{i+1}) pairs of
             each row are kept; p(w) = (1 - weight) p_model(w)
             + weight sum_{i: x_{i+1}=w} softmax_i(theta h_t . h_i).

Every method scores each token once, carrying the hidden state (and its own
state: adapted params, the cache) across windows; the last partial window is
padded and masked rather than dropped, so the count is exact. Sums stay on the
device until the end (no per-step sync).

A method is a `Method(init, step)` (or one that scores the whole stream
itself, e.g. 'ensemble' in train/ensembles.py): init(params, model, batch_size, sharding,
eval_config) -> its state; step(model, state, batch, carry) -> (summed NLL [],
token count [], next carry, next state), jit-compiled.
"""

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from rnnlm_jax import data, registry
from rnnlm_jax.training import parallel
from rnnlm_jax.training.steps import eval_step, token_nll


@dataclasses.dataclass(frozen=True)
class Method:
  """init / step: the method's state and one window (see the module doc);
  or `score`: the method scores the whole stream itself (an ensemble, whose
  members score the stream one after another)."""
  init: Callable[..., Any] | None
  step: Callable[..., tuple] | None
  score: Callable[..., dict] | None = None


METHODS: registry.Registry[Method] = registry.Registry('eval.method')


def initial_carry(model, batch_size: int, sharding):
  """Zero hidden state of `batch_size` rows, laid out by `sharding`.

  Made by a jit with out_shardings, which works on every host of a multi-host
  mesh; cached so the reset at each epoch (or sentence batch) never recompiles.
  """
  return _zeros_fn(model, batch_size, sharding)()


@functools.lru_cache(maxsize=32)
def _zeros_fn(model, batch_size: int, sharding):
  return jax.jit(lambda: model.initial_carry(batch_size), out_shardings=sharding)


def summarize(total_nll: float, num_tokens: float) -> dict[str, float]:
  """Mean NLL (nats/token), perplexity and bits per token (= BPC for chars)."""
  loss = total_nll / max(num_tokens, 1.0)
  return {'loss': loss, 'ppl': math.exp(min(loss, 700.0)),
          'bits': loss / math.log(2), 'tokens': num_tokens}


def bits_per_char(total_nll: float, num_chars: int) -> float:
  """Total NLL (nats) in bits per character of the scored text."""
  return total_nll / math.log(2) / max(num_chars, 1)


def score_rows(params, model, batches, *, batch_size: int, mesh: Mesh,
               num_chars: int, task: str, method: str = 'static'
               ) -> dict[str, float]:
  """Static scoring of independent rows (sentence pairs, instruction rows):
  each batch from a zero carry, every masked-in target token once.

  batches: an iterable of host batches of `batch_size` rows (this process's
  rows of each global batch); num_chars: characters of the scored text, for
  bits per character. Returns summarize()'s keys plus 'bits_per_char'.
  """
  if method != 'static':
    raise ValueError(f"eval.method={method!r}: the {task} task scores "
                     "'static' only")
  sharding = parallel.batch_sharded(mesh, batch_size)
  total, count = jnp.zeros(()), jnp.zeros(())
  for batch in batches:
    batch = parallel.to_global(batch, sharding, batch_size)
    carry = initial_carry(model, batch_size, sharding)
    nll, n, _ = eval_step(params, model, batch, carry)
    total, count = total + nll, count + n
  return dict(summarize(float(total), float(count)),
              bits_per_char=bits_per_char(float(total), num_chars))


def score_stream(params, model, stream: np.ndarray, *, batch_size: int,
                 seq_len: int, mesh: Mesh, method: str = 'static',
                 eval_config=None, return_state: bool = False, corpus=None):
  """Scores every token of `stream` once with `method` (see module doc).

  Returns the summary dict, or (summary, the method's final state) with
  `return_state` (e.g. dynamic evaluation's adapted params are state[0]).
  `corpus`: the corpus the stream comes from, for methods that need more of
  it (an ensemble fits its weights on the validation split).
  """
  spec = METHODS.get(method)
  if spec.score is not None:
    return spec.score(params, model, stream, batch_size=batch_size,
                      seq_len=seq_len, mesh=mesh, eval_config=eval_config,
                      corpus=corpus)
  sharding = parallel.batch_sharded(mesh, batch_size)
  rows = parallel.process_rows(batch_size, sharding)
  carry = initial_carry(model, batch_size, sharding)
  state = spec.init(params, model, batch_size, sharding, eval_config)
  total_nll = jnp.zeros((), jnp.float32)
  num_tokens = jnp.zeros((), jnp.float32)
  for batch in data.bptt_windows(stream, batch_size, seq_len, drop_last=False,
                                 rows=rows):
    batch = parallel.to_global(batch, sharding, batch_size)
    nll, count, carry, state = spec.step(model, state, batch, carry)
    total_nll += nll
    num_tokens += count
  summary = summarize(float(total_nll), float(num_tokens))
  return (summary, state) if return_state else summary


# --- static ----------------------------------------------------------------

def _static_step(model, params, batch, carry):
  nll, count, carry = eval_step(params, model, batch, carry)
  return nll, count, carry, params


METHODS.register('static', Method(
    init=lambda params, model, batch_size, sharding, cfg: params,
    step=_static_step))


# --- dynamic evaluation ----------------------------------------------------

@functools.partial(jax.jit, static_argnames=('model',),
                   donate_argnames=('state', 'carry'))
def dynamic_step(model, state, batch: data.Batch, carry):
  """Score-then-adapt on one window; state = (params, trained params, lr,
  decay). Returns (summed NLL [] under the OLD params, token count [], next
  carry, state with the adapted params)."""
  params, params0, lr, decay = state

  def loss_fn(p):
    logits, new_carry = model.apply({'params': p}, batch.inputs, carry,
                                    train=False)
    total = token_nll(logits, batch.targets, batch.mask).sum()
    return total / jnp.maximum(batch.mask.sum(), 1.0), (total, new_carry)

  grads, (total, new_carry) = jax.grad(loss_fn, has_aux=True)(params)
  params = jax.tree.map(lambda p, g, p0: p - lr * g + decay * (p0 - p),
                        params, grads, params0)
  return total, batch.mask.sum(), new_carry, (params, params0, lr, decay)


def _dynamic_init(params, model, batch_size, sharding, cfg):
  del model, batch_size, sharding
  # Copied: the adapted params are donated each step; keep the trained ones.
  return (jax.tree.map(jnp.copy, params), params, jnp.float32(cfg.dynamic.lr),
          jnp.float32(cfg.dynamic.decay))


METHODS.register('dynamic', Method(init=_dynamic_init, step=dynamic_step))


# --- neural cache pointer --------------------------------------------------

def init_cache(batch_size: int, size: int, hidden: int):
  """Empty cache: keys f32 [B, S, H], next words int32 [B, S], valid [B, S]."""
  return (jnp.zeros((batch_size, size, hidden), jnp.float32),
          jnp.zeros((batch_size, size), jnp.int32),
          jnp.zeros((batch_size, size), jnp.bool_))


def cache_log_prob(h, targets, ok, cache, theta):
  """log p_cache(target_t) [B, T] (-inf: no hit) and 'any entry' [B, T].

  Query h_t attends over the S cached pairs and this window's pairs i < t,
  at most S back (Grave et al.'s window), padding left out.
  """
  keys, values, valid = cache
  size, steps = keys.shape[1], h.shape[1]
  all_k = jnp.concatenate([keys, h], axis=1)  # [B, S+T, H]
  all_v = jnp.concatenate([values, targets], axis=1)
  all_ok = jnp.concatenate([valid, ok], axis=1)
  j, t = jnp.arange(size + steps), jnp.arange(steps)
  in_window = (j[None, :] >= t[:, None]) & (j[None, :] < size + t[:, None])
  allowed = in_window[None] & all_ok[:, None, :]  # [B, T, S+T]
  scores = theta * jnp.einsum('btd,bjd->btj', h, all_k)
  scores = jnp.where(allowed, scores, -jnp.inf)
  any_entry = allowed.any(axis=-1)
  norm = jnp.where(any_entry, jax.nn.logsumexp(scores, axis=-1), 0.0)
  log_attn = jnp.where(allowed, scores - norm[..., None], -jnp.inf)
  hit = allowed & (all_v[:, None, :] == targets[:, :, None])
  log_pc = jax.nn.logsumexp(jnp.where(hit, log_attn, -jnp.inf), axis=-1)
  new_cache = (all_k[:, steps:], all_v[:, steps:], all_ok[:, steps:])
  return log_pc, any_entry, new_cache


@functools.partial(jax.jit, static_argnames=('model',),
                   donate_argnames=('carry', 'state'))
def cache_step(model, state, batch: data.Batch, carry):
  """One window with the cache pointer; state = (params, cache, theta,
  weight). Returns (summed NLL [], count [], carry, state)."""
  params, cache, theta, weight = state
  (logits, new_carry), variables = model.apply(
      {'params': params}, batch.inputs, carry, train=False,
      mutable=['intermediates'])
  h = variables['intermediates']['last_raw'][0].astype(jnp.float32)  # [B, T, H]
  ok = batch.mask > 0
  log_pc, any_entry, cache = cache_log_prob(h, batch.targets, ok, cache, theta)
  log_pv = -token_nll(logits, batch.targets, jnp.ones_like(batch.mask))
  lam = jnp.where(any_entry, weight, 0.0)  # nothing cached yet: the model alone
  log_p = jnp.logaddexp(jnp.log1p(-lam) + log_pv, jnp.log(lam) + log_pc)
  nll = jnp.where(ok, -log_p, 0.0)
  return nll.sum(), batch.mask.sum(), new_carry, (params, cache, theta, weight)


def _cache_init(params, model, batch_size, sharding, cfg):
  if not hasattr(model, 'layer_sizes'):
    raise ValueError("eval.method='cache' needs model.type='rnn'")
  cache = jax.device_put(
      init_cache(batch_size, cfg.cache.size, model.layer_sizes()[-1]), sharding)
  # Copied: the state is donated each step and params are the caller's.
  return (jax.tree.map(jnp.copy, params), cache, jnp.float32(cfg.cache.theta),
          jnp.float32(cfg.cache.weight))


METHODS.register('cache', Method(init=_cache_init, step=cache_step))
