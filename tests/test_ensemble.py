"""EM interpolation weights and mixture scoring (rnnlm_jax.ensemble)."""

import numpy as np
import pytest

from rnnlm_jax import ensemble
from rnnlm_jax.data import Vocabulary


def _mixture_data(true_w, n=20000, v=50, seed=0):
  """Tokens drawn from sum_m w_m q_m; returns each model's prob of them."""
  rng = np.random.default_rng(seed)
  q = rng.dirichlet(np.full(v, 0.3), size=len(true_w))  # [M, V] models
  which = rng.choice(len(true_w), size=n, p=true_w)
  # Inverse-CDF sampling of one token per row from its model q[which].
  cdf = np.cumsum(q, axis=1)[which]
  tokens = np.minimum((rng.random((n, 1)) > cdf).sum(axis=1), v - 1)
  return q[:, tokens]  # [M, N]


def test_em_recovers_known_weights():
  true_w = np.array([0.6, 0.3, 0.1])
  w = ensemble.fit_weights_em(_mixture_data(true_w), iters=500, tol=1e-10)
  assert w.sum() == pytest.approx(1.0)
  np.testing.assert_allclose(w, true_w, atol=0.03)


def test_em_never_lowers_likelihood_and_weights_sum_to_one():
  probs = _mixture_data(np.array([0.2, 0.5, 0.3]), n=3000, seed=1)
  w = np.array([0.9, 0.05, 0.05])
  ll = ensemble.mean_log_likelihood(probs, w)
  for _ in range(30):
    w = ensemble.em_step(probs, w)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    new_ll = ensemble.mean_log_likelihood(probs, w)
    assert new_ll >= ll - 1e-12
    ll = new_ll
  # The fit beats every single model and the uniform mixture.
  fitted = ensemble.fit_weights_em(probs)
  best = ensemble.mean_log_likelihood(probs, fitted)
  for m in range(3):
    assert best > np.log(probs[m]).mean()
  assert best >= ensemble.mean_log_likelihood(probs, np.full(3, 1 / 3))


def test_fixed_weights_path():
  probs = np.array([[0.5, 0.1, 0.2], [0.1, 0.4, 0.0]])
  w = np.array([0.25, 0.75])
  np.testing.assert_allclose(ensemble.mix_log_prob(probs, w),
                             np.log(0.25 * probs[0] + 0.75 * probs[1]))
  # iters=0 keeps the given weights.
  np.testing.assert_array_equal(
      ensemble.fit_weights_em(probs, iters=0, init=w), w)
  with pytest.raises(ValueError, match='summing to 1'):
    ensemble.mix_log_prob(probs, [0.5, 0.6])
  with pytest.raises(ValueError, match='not log probabilities'):
    ensemble.fit_weights_em(np.log(probs + 1e-3))


def test_different_vocabularies_raise_one_line_error():
  a = Vocabulary(['<unk>', '<eos>', 'a'])
  b = Vocabulary(['<unk>', '<eos>', 'b'])
  ensemble.check_same_vocabulary({'kn5': a, 'lstm': Vocabulary(a.tokens)})
  with pytest.raises(ValueError, match="'kn5' and 'lstm' use different"):
    ensemble.check_same_vocabulary({'kn5': a, 'lstm': b.fingerprint})
