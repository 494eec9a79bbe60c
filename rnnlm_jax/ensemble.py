"""Linear interpolation of language models (numpy only).

An ensemble scores token t as p(t) = sum_m w_m p_m(t). The weights are fit
by EM on the validation stream, given each model's probability of every
actual next token:

  probs = np.stack([np.exp(kn.log_prob(valid)), np.exp(rnn_log_probs)])
  w = fit_weights_em(probs)                     # [M], sums to 1
  test_nats = -mix_log_prob(test_probs, w).mean()

Every model must use the same vocabulary (same ids): check_same_vocabulary.
"""

from typing import Mapping

import numpy as np


def _check_probs(token_probs) -> np.ndarray:
  p = np.asarray(token_probs, dtype=np.float64)
  if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
    raise ValueError(f'token_probs has shape {p.shape}; expected [M models, '
                     'N tokens] with M, N >= 1')
  if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
    raise ValueError('token_probs must be probabilities in [0, 1] (pass '
                     'np.exp(log_probs), not log probabilities)')
  return p


def _check_weights(weights, m: int) -> np.ndarray:
  w = np.asarray(weights, dtype=np.float64).reshape(-1)
  if w.shape != (m,) or w.min() < 0 or abs(w.sum() - 1) > 1e-6:
    raise ValueError(f'weights {w.tolist()} must be {m} non-negative numbers '
                     'summing to 1')
  return w


def mean_log_likelihood(token_probs, weights) -> float:
  """Mean natural-log probability per token of the mixture."""
  return float(mix_log_prob(token_probs, weights).mean())


def em_step(token_probs, weights) -> np.ndarray:
  """One EM update of the weights [M]; never lowers the likelihood.

  E: responsibility r[m, n] = w_m p_m(n) / sum_j w_j p_j(n);
  M: w_m = mean_n r[m, n].
  """
  p = _check_probs(token_probs)
  w = _check_weights(weights, p.shape[0])
  joint = w[:, None] * p
  total = joint.sum(axis=0)
  # A token every model gives probability 0 carries no information about w.
  ok = total > 0
  if not ok.any():
    return w
  resp = joint[:, ok] / total[ok]
  w = resp.mean(axis=1)
  return w / w.sum()


def fit_weights_em(token_probs, iters: int = 100, tol: float = 1e-7,
                   init=None) -> np.ndarray:
  """Linear-interpolation weights [M] maximising validation likelihood.

  Args:
    token_probs: [M, N] each model's probability of each actual next token.
    iters: at most this many EM steps (0 returns `init`).
    tol: stop when the mean log-likelihood per token gains less than this.
    init: starting weights [M]; None: uniform.

  Returns:
    float64 [M], non-negative, summing to 1.
  """
  p = _check_probs(token_probs)
  m = p.shape[0]
  w = np.full(m, 1.0 / m) if init is None else _check_weights(init, m)
  ll = mean_log_likelihood(p, w)
  for _ in range(int(iters)):
    new_w = em_step(p, w)
    new_ll = mean_log_likelihood(p, new_w)
    w, gain, ll = new_w, new_ll - ll, new_ll
    if gain < tol:
      break
  return w


def mix_log_prob(token_probs, weights) -> np.ndarray:
  """float64 [N]: log sum_m w_m p_m(n), the mixture's log prob per token."""
  p = _check_probs(token_probs)
  w = _check_weights(weights, p.shape[0])
  with np.errstate(divide='ignore'):
    return np.log(w @ p)


def check_same_vocabulary(vocabs: Mapping[str, object]) -> None:
  """Raises ValueError unless all named vocabularies have one fingerprint.

  Args:
    vocabs: {model name: data.Vocabulary (or its fingerprint str)}.
  """
  prints = {name: getattr(v, 'fingerprint', v) for name, v in vocabs.items()}
  if len(set(prints.values())) > 1:
    (a, fa), (b, fb) = next(
        ((x, y) for x in prints.items() for y in prints.items()
         if x[1] != y[1]))
    raise ValueError(f'ensemble members {a!r} and {b!r} use different '
                     f'vocabularies (fingerprints {fa} vs {fb}); token ids '
                     'must match, so fit both on the same Vocabulary')
