"""AWD-LSTM activation regularization (AR) and temporal AR (TAR)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnlm_jax import config_checks, configs, data, models
from rnnlm_jax.training import steps

V, B, T, H = 11, 3, 5, 4


def test_penalties_match_hand_computation():
  rng = np.random.default_rng(0)
  dropped = rng.normal(size=(B, T, H)).astype(np.float32)
  raw = rng.normal(size=(B, T, H)).astype(np.float32)
  inter = {'last_dropped': (jnp.asarray(dropped),), 'last_raw': (jnp.asarray(raw),)}
  ones = jnp.ones((B, T))
  out = steps.activation_penalties(inter, ones, 2.0, 1.0)
  np.testing.assert_allclose(out['ar'], 2.0 * np.mean(dropped ** 2), rtol=1e-6)
  np.testing.assert_allclose(
      out['tar'], 1.0 * np.mean((raw[:, 1:] - raw[:, :-1]) ** 2), rtol=1e-6)
  # Padding (sentence mode) is left out: only real tokens / real pairs count.
  mask = np.ones((B, T), np.float32)
  mask[0, 3:] = 0
  out = steps.activation_penalties(inter, jnp.asarray(mask), 0.5, 3.0)
  ar = sum((dropped[b, t] ** 2).sum() for b in range(B) for t in range(T)
           if mask[b, t]) / (mask.sum() * H)
  pairs = [(b, t) for b in range(B) for t in range(1, T)
           if mask[b, t] and mask[b, t - 1]]
  tar = sum(((raw[b, t] - raw[b, t - 1]) ** 2).sum() for b, t in pairs) / (
      len(pairs) * H)
  np.testing.assert_allclose(out['ar'], 0.5 * ar, rtol=1e-5)
  np.testing.assert_allclose(out['tar'], 3.0 * tar, rtol=1e-5)
  assert steps.activation_penalties(inter, ones, 0.0, 0.0) == {}


def _fresh(carry):
  """A carry of distinct buffers (train_step donates it; LSTM zeros share one)."""
  return jax.tree.map(lambda x: jnp.array(x, copy=True), carry)


def _setup(dropout_output=0.5):
  cfg = configs.base_config().model.to_dict()
  cfg.update(num_layers=2, hidden_size=H, embed_size=H, unroll=1,
             dropout_kind='locked', dropout_output=dropout_output)
  model = models.make_model(cfg, V)
  state = steps.create_train_state(model, optax.sgd(0.1), 0, B, T)
  toks = np.random.default_rng(1).integers(0, V, (B, T + 1)).astype(np.int32)
  batch = data.Batch(inputs=jnp.asarray(toks[:, :-1]),
                     targets=jnp.asarray(toks[:, 1:]),
                     mask=jnp.ones((B, T), jnp.float32))
  return model, state, batch


def test_train_step_adds_penalties_to_the_gradient_only():
  model, state, batch = _setup()
  params = jax.tree.map(np.asarray, state.params)
  key = jax.random.fold_in(state.rng, state.step)
  carry = model.initial_carry(B)

  def full_loss(p):
    (logits, _), var = model.apply(
        {'params': p}, batch.inputs, carry, train=True,
        rngs={'dropout': key}, mutable=['intermediates'])
    nll = steps.token_nll(logits, batch.targets, batch.mask).sum() / B
    h_drop = var['intermediates']['last_dropped'][0]
    h_raw = var['intermediates']['last_raw'][0]
    ar = 2.0 * jnp.mean(h_drop ** 2)
    tar = 1.0 * jnp.mean((h_raw[:, 1:] - h_raw[:, :-1]) ** 2)
    return nll + ar + tar, (nll, ar, tar)

  grads, (nll, ar, tar) = jax.grad(full_loss, has_aux=True)(state.params)
  new_state, _, metrics = steps.train_step(
      state, batch, _fresh(model.initial_carry(B)), loss_normalization='sequence', ar_alpha=2.0,
      tar_beta=1.0)
  np.testing.assert_allclose(metrics['ar'], ar, rtol=1e-5)
  np.testing.assert_allclose(metrics['tar'], tar, rtol=1e-5)
  np.testing.assert_allclose(metrics['loss'], nll * B / (B * T), rtol=1e-5)
  expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new_state.params, expected)


def test_off_by_default():
  model, state, batch = _setup()
  _, _, metrics = steps.train_step(state, batch, _fresh(model.initial_carry(B)))
  assert 'ar' not in metrics and 'tar' not in metrics
  c = configs.base_config()
  assert (c.train.ar_alpha, c.train.tar_beta) == (0.0, 0.0)
  c.train.ar_alpha = -1.0
  with pytest.raises(ValueError, match='train.ar_alpha'):
    config_checks.validate(c)
  c.train.ar_alpha = 2.0
  c.model.type = 'transformer'
  with pytest.raises(ValueError, match="model.type='rnn'"):
    config_checks.validate(c)
