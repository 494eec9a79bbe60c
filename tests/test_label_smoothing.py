"""Label-smoothed cross-entropy (train.label_smoothing)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnlm_jax import config_checks, configs, data, models
from rnnlm_jax.training import steps

V, B, T, H = 13, 3, 6, 8


def _logits_and_targets():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(B, T, V)) * 3, jnp.float32)
  targets = jnp.asarray(rng.integers(0, V, (B, T)), jnp.int32)
  mask = np.ones((B, T), np.float32)
  mask[1, 4:] = 0  # padding contributes nothing
  return logits, targets, jnp.asarray(mask)


@pytest.mark.parametrize('eps', [0.1, 0.3])
def test_equals_optax_cross_entropy_on_smoothed_one_hot_labels(eps):
  logits, targets, mask = _logits_and_targets()
  labels = optax.smooth_labels(jax.nn.one_hot(targets, V), eps)
  expected = optax.softmax_cross_entropy(logits, labels) * mask
  got, nll = steps.smoothed_token_loss(logits, targets, mask, eps)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(nll, steps.token_nll(logits, targets, mask),
                             rtol=1e-5, atol=1e-6)
  assert float(got[1, 4:].sum()) == 0.0
  # Smoothing is not the NLL: it must change the loss.
  assert not np.allclose(got, steps.token_nll(logits, targets, mask))


def test_zero_is_the_plain_nll():
  logits, targets, mask = _logits_and_targets()
  smoothed, nll = steps.smoothed_token_loss(logits, targets, mask, 0.0)
  np.testing.assert_allclose(smoothed, nll, rtol=1e-6)
  np.testing.assert_allclose(smoothed, steps.token_nll(logits, targets, mask),
                             rtol=1e-5, atol=1e-6)


def _setup():
  cfg = configs.base_config().model.to_dict()
  cfg.update(num_layers=1, hidden_size=H, embed_size=H, unroll=1, dropout=0.0,
             dropout_embed=0.0, dropout_output=0.0)
  model = models.make_model(cfg, V)
  state = steps.create_train_state(model, optax.sgd(0.5), 0, B, T)
  toks = np.random.default_rng(1).integers(0, V, (B, T + 1)).astype(np.int32)
  batch = data.Batch(inputs=jnp.asarray(toks[:, :-1]),
                     targets=jnp.asarray(toks[:, 1:]),
                     mask=jnp.ones((B, T), jnp.float32))
  return model, state, batch


def test_train_step_differentiates_the_smoothed_loss_and_reports_the_nll():
  model, state, batch = _setup()
  params = jax.tree.map(np.array, state.params)
  carry = model.initial_carry(B)
  eps = 0.2

  def smoothed(p):
    logits, _ = model.apply({'params': p}, batch.inputs, carry, train=True,
                            rngs={'dropout': jax.random.PRNGKey(0)})
    loss, _ = steps.smoothed_token_loss(logits, batch.targets, batch.mask, eps)
    nll = steps.token_nll(logits, batch.targets, batch.mask)
    return loss.sum() / batch.mask.sum(), nll.sum() / batch.mask.sum()

  grads, nll = jax.grad(smoothed, has_aux=True)(params)
  expected = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
  fresh = lambda: jax.tree.map(lambda x: jnp.array(x, copy=True), carry)
  new_state, _, metrics = steps.train_step(
      state, batch, fresh(), loss_normalization='token', label_smoothing=eps)
  np.testing.assert_allclose(metrics['loss'], nll, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new_state.params, expected)
  # ... and not the NLL's update.
  plain_state = steps.create_train_state(model, optax.sgd(0.5), 0, B, T)
  plain, _, _ = steps.train_step(plain_state, batch, fresh(),
                                 loss_normalization='token')
  assert not all(np.allclose(a, b) for a, b in zip(
      jax.tree.leaves(plain.params), jax.tree.leaves(new_state.params)))


@pytest.mark.parametrize('bad', [-0.1, 1.0])
def test_a_value_outside_0_1_is_one_line_error(bad):
  c = configs.base_config()
  c.train.label_smoothing = bad
  with pytest.raises(ValueError, match=r'train\.label_smoothing'):
    config_checks.validate(c)
