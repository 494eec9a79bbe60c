"""Evaluation-time methods (config `eval.method`), for the final valid/test numbers.

  'static'   plain scoring (rnnlm_jax.train.evaluate.evaluate).
  'dynamic'  dynamic evaluation (Krause et al. 2018, the SGD form): each window
             is scored with the current params, THEN the params take one SGD
             step on that window's mean token NLL (eval.dynamic_lr) plus a
             pull back to the trained params (eval.dynamic_decay), so the
             model adapts to the stream as it reads it; nothing is saved.
  'cache'    the neural cache pointer (Grave et al. 2017; RNN only): the last
             eval.cache_size (last-layer state h_i, next word x_{i+1}) pairs of
             each row are kept; p(w) = (1 - lambda) p_model(w)
             + lambda sum_{i: x_{i+1}=w} softmax_i(theta h_t . h_i).

Both score every token once, carrying the hidden state (and the cache) across
windows like `evaluate`; the last window is padded and masked.
"""

import functools
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from rnnlm_jax import data
from rnnlm_jax.train import evaluate as evaluate_lib
from rnnlm_jax.train import parallel
from rnnlm_jax.train.steps import token_nll

METHODS = ('static', 'dynamic', 'cache')


def _windows(stream: np.ndarray, batch_size: int, seq_len: int,
             mesh: Mesh) -> tuple[Any, Iterator[data.Batch]]:
  """(sharding, global batches of the stream), as evaluate_lib.evaluate."""
  sharding = parallel.batch_sharded(mesh, batch_size)
  rows = parallel.process_rows(batch_size, sharding)
  batches = data.bptt_windows(stream, batch_size, seq_len, drop_last=False,
                              rows=rows)
  return sharding, (parallel.to_global(b, sharding, batch_size) for b in batches)


@functools.partial(jax.jit, static_argnames=('model',),
                   donate_argnames=('params', 'carry'))
def dynamic_step(model, params, params0, batch: data.Batch, carry,
                 lr: jax.Array, decay: jax.Array):
  """Score-then-adapt on one window.

  Returns (new params, summed NLL [] of the window under the OLD params,
  token count [], next carry).
  """

  def loss_fn(p):
    logits, new_carry = model.apply({'params': p}, batch.inputs, carry,
                                    train=False)
    total = token_nll(logits, batch.targets, batch.mask).sum()
    return total / jnp.maximum(batch.mask.sum(), 1.0), (total, new_carry)

  grads, (total, new_carry) = jax.grad(loss_fn, has_aux=True)(params)
  params = jax.tree.map(lambda p, g, p0: p - lr * g + decay * (p0 - p),
                        params, grads, params0)
  return params, total, batch.mask.sum(), new_carry


def evaluate_dynamic(params, model, stream: np.ndarray, *, batch_size: int,
                     seq_len: int, mesh: Mesh, lr: float, decay: float = 0.0,
                     return_params: bool = False):
  """Dynamic evaluation of `stream`; summary dict (and the adapted params)."""
  sharding, batches = _windows(stream, batch_size, seq_len, mesh)
  carry = evaluate_lib.initial_carry(model, batch_size, sharding)
  params0 = params
  params = jax.tree.map(jnp.copy, params)  # donated below; keep the trained ones
  total, count = jnp.zeros(()), jnp.zeros(())
  lr, decay = jnp.float32(lr), jnp.float32(decay)
  for batch in batches:
    params, nll, n, carry = dynamic_step(model, params, params0, batch, carry,
                                         lr, decay)
    total, count = total + nll, count + n
  summary = evaluate_lib.summarize(float(total), float(count))
  return (summary, params) if return_params else summary


def init_cache(batch_size: int, size: int, hidden: int):
  """Empty cache: keys f32 [B, S, H], next words int32 [B, S], valid [B, S]."""
  return (jnp.zeros((batch_size, size, hidden), jnp.float32),
          jnp.zeros((batch_size, size), jnp.int32),
          jnp.zeros((batch_size, size), jnp.bool_))


def _cache_log_prob(h, targets, ok, cache, theta):
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
                   donate_argnames=('carry', 'cache'))
def cache_step(model, params, batch: data.Batch, carry, cache,
               theta: jax.Array, lam: jax.Array):
  """One window with the cache pointer: (summed NLL [], count [], carry, cache)."""
  (logits, new_carry), variables = model.apply(
      {'params': params}, batch.inputs, carry, train=False,
      mutable=['intermediates'])
  h = variables['intermediates']['last_raw'][0].astype(jnp.float32)  # [B, T, H]
  ok = batch.mask > 0
  log_pc, any_entry, cache = _cache_log_prob(h, batch.targets, ok, cache, theta)
  log_pv = -token_nll(logits, batch.targets, jnp.ones_like(batch.mask))
  lam = jnp.where(any_entry, lam, 0.0)  # nothing cached yet: the model alone
  log_p = jnp.logaddexp(jnp.log1p(-lam) + log_pv, jnp.log(lam) + log_pc)
  nll = jnp.where(ok, -log_p, 0.0)
  return nll.sum(), batch.mask.sum(), new_carry, cache


def evaluate_cache(params, model, stream: np.ndarray, *, batch_size: int,
                   seq_len: int, mesh: Mesh, size: int, theta: float,
                   lam: float) -> dict[str, float]:
  """Cache-pointer evaluation of `stream` (RecurrentLM only)."""
  if not hasattr(model, 'layer_sizes'):
    raise ValueError("eval.method='cache' needs model.type='rnn'")
  sharding, batches = _windows(stream, batch_size, seq_len, mesh)
  carry = evaluate_lib.initial_carry(model, batch_size, sharding)
  cache = jax.device_put(
      init_cache(batch_size, size, model.layer_sizes()[-1]), sharding)
  total, count = jnp.zeros(()), jnp.zeros(())
  theta, lam = jnp.float32(theta), jnp.float32(lam)
  for batch in batches:
    nll, n, carry, cache = cache_step(model, params, batch, carry, cache,
                                      theta, lam)
    total, count = total + nll, count + n
  return evaluate_lib.summarize(float(total), float(count))


def evaluate(state, model, stream: np.ndarray, *, batch_size: int,
             seq_len: int, mesh: Mesh, eval_config) -> dict[str, float]:
  """`stream` scored by the method `eval_config.method` selects."""
  method = eval_config.get('method', 'static')
  if method == 'dynamic':
    return evaluate_dynamic(state.params, model, stream, batch_size=batch_size,
                            seq_len=seq_len, mesh=mesh,
                            lr=eval_config.dynamic_lr,
                            decay=eval_config.dynamic_decay)
  if method == 'cache':
    return evaluate_cache(state.params, model, stream, batch_size=batch_size,
                          seq_len=seq_len, mesh=mesh, size=eval_config.cache_size,
                          theta=eval_config.cache_theta,
                          lam=eval_config.cache_lambda)
  if method != 'static':
    raise ValueError(f'eval.method={method!r} is not one of {METHODS}')
  return evaluate_lib.evaluate(state, model, stream, batch_size=batch_size,
                               seq_len=seq_len, mesh=mesh)
