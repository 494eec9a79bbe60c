"""Top-k / top-p filtering and greedy choice."""

import jax
import jax.numpy as jnp
import numpy as np

from rnnlm_jax import sampling


def test_top_k_keeps_the_k_largest():
  logits = jnp.array([[1.0, 5.0, 3.0, 4.0, 2.0]])
  kept = np.isfinite(np.asarray(sampling.filter_logits(logits, 2, 1.0)))
  np.testing.assert_array_equal(kept, [[False, True, False, True, False]])


def test_top_p_keeps_the_smallest_nucleus():
  probs = np.array([[0.5, 0.3, 0.15, 0.05]])
  logits = jnp.log(probs)
  kept = lambda p: np.isfinite(np.asarray(sampling.filter_logits(logits, 0, p)))
  np.testing.assert_array_equal(kept(0.5), [[True, False, False, False]])
  np.testing.assert_array_equal(kept(0.75), [[True, True, False, False]])
  np.testing.assert_array_equal(kept(0.9), [[True, True, True, False]])
  np.testing.assert_array_equal(kept(1.0), [[True, True, True, True]])


def test_greedy_is_argmax_and_sampling_respects_filter():
  logits = jnp.array([[0.0, 2.0, 1.0]] * 64)
  key = jax.random.PRNGKey(0)
  np.testing.assert_array_equal(sampling.choose(key, logits, 0.0, 0, 1.0), 1)
  drawn = np.asarray(sampling.choose(key, logits, 1.0, 2, 1.0))
  assert set(drawn.tolist()) == {1, 2}  # top-2 only, and both drawn


def test_top_p_zero_or_below_keeps_only_the_likeliest():
  logits = jnp.log(jnp.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]))
  for top_p in (0.0, -1.0, 1e-9):
    kept = np.isfinite(np.asarray(sampling.filter_logits(logits, 0, top_p)))
    np.testing.assert_array_equal(kept, [[False, True, False],
                                         [True, False, False]])
  drawn = sampling.choose(jax.random.PRNGKey(0), logits, 1.0, 0, 0.0)
  np.testing.assert_array_equal(drawn, [1, 0])
