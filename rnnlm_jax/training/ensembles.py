"""eval.method='ensemble': the run's model linearly interpolated with other
finished runs over the same vocabulary and stream.

  p(w_t) = sum_m lambda_m p_m(w_t | history),  m = this run, then each of
  eval.ensemble.members (workdirs of finished runs: neural or n-gram)

The weights are eval.ensemble.weights (one per model, this run first), or,
when empty, fitted by EM on the validation split (rnnlm_jax.ensemble) and
then used for every split. Each neural model scores the stream at batch 1
(its per-token log-probabilities in stream order, state carried across
windows, as the papers' test protocol); an n-gram run scores it by counts.
A member trained over another vocabulary is a one-line error.
"""

import functools
import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from rnnlm_jax import data, ensemble, models
from rnnlm_jax.training import counting, parallel, run_files, scoring
from rnnlm_jax.training.steps import token_nll


@functools.partial(jax.jit, static_argnames=('model',),
                   donate_argnames=('carry',))
def _token_nll_step(params, model, batch: data.Batch, carry):
  logits, carry = model.apply({'params': params}, batch.inputs, carry,
                              train=False)
  return token_nll(logits, batch.targets, batch.mask), carry


def token_log_probs(params, model, stream: np.ndarray, *, seq_len: int,
                    mesh) -> np.ndarray:
  """float64 [N]: log p of every token of `stream` (after the first), in
  order: one row, the hidden state carried across windows of seq_len."""
  sharding = parallel.batch_sharded(mesh, 1)
  carry = scoring.initial_carry(model, 1, sharding)
  out = []
  for batch in data.bptt_windows(stream, 1, seq_len, drop_last=False):
    batch = parallel.to_global(batch, sharding, 1)
    nll, carry = _token_nll_step(params, model, batch, carry)
    mask = np.asarray(batch.mask[0]) > 0
    out.append(-np.asarray(nll[0], np.float64)[mask])
  return np.concatenate(out) if out else np.zeros((0,))


def _member(workdir: str):
  """(name, vocab, log-prob function of a stream) of a finished run."""
  from rnnlm_jax.training import inference  # pylint: disable=import-outside-toplevel
  with open(os.path.join(workdir, 'config.json')) as f:
    config = ml_collections.ConfigDict(json.load(f))
  vocab = run_files.load_vocab(workdir)
  if models.MODEL_TYPES.get(config.model.type).counted:
    lm = counting.load(workdir, vocab)
    return vocab, lambda stream, seq_len, mesh: lm.log_prob(np.asarray(stream))
  model, state, _ = inference.load_trained(config, workdir, 'best')
  return vocab, lambda stream, seq_len, mesh: token_log_probs(
      state.params, model, stream, seq_len=seq_len, mesh=mesh)


def _per_token(scorers, stream, seq_len, mesh) -> np.ndarray:
  """[M, N] probabilities of each actual next token under each model."""
  rows = [score(stream, seq_len, mesh) for score in scorers]
  n = min(len(r) for r in rows)  # an n-gram also scores the first token
  return np.exp(np.stack([r[len(r) - n:] for r in rows]))


def score(params, model, stream: np.ndarray, *, batch_size: int, seq_len: int,
          mesh, eval_config, corpus) -> dict[str, float]:
  """The interpolated stream score (see the module doc)."""
  del batch_size  # batch 1, so that tokens come in stream order
  e = eval_config.ensemble
  workdirs = [w.strip() for w in e.members.split(',') if w.strip()]
  if not workdirs:
    raise ValueError("eval.method='ensemble' needs eval.ensemble.members "
                     '(comma-separated workdirs of finished runs)')
  members = [_member(w) for w in workdirs]
  ensemble.check_same_vocabulary(
      {'this run': corpus.vocab, **{w: m[0] for w, m in zip(workdirs, members)}})
  scorers = [lambda s, t, m: token_log_probs(params, model, s, seq_len=t, mesh=m)]
  scorers += [m[1] for m in members]
  if e.weights:
    weights = np.asarray([float(x) for x in e.weights.split(',')])
  else:  # fitted on the validation split, whatever split is scored
    weights = ensemble.fit_weights_em(
        _per_token(scorers, corpus.valid, seq_len, mesh))
    logging.info('ensemble weights (EM on valid): %s', np.round(weights, 4))
  log_p = ensemble.mix_log_prob(_per_token(scorers, stream, seq_len, mesh),
                                weights)
  result = scoring.summarize(float(-log_p.sum()), float(len(log_p)))
  result.update({f'weight_{i}': float(w) for i, w in enumerate(weights)})
  return result


scoring.METHODS.register('ensemble', scoring.Method(init=None, step=None,
                                                    score=score))
