"""AWD-LSTM model regularizers: locked dropout, embedding-row dropout, weight drop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import configs, models
from rnnlm_jax.models import regularizers

V, B, T, H = 13, 4, 7, 6


def _model(**overrides):
  cfg = configs.base_config().model.to_dict()
  cfg.update(num_layers=2, hidden_size=H, embed_size=H, unroll=1)
  cfg.update(overrides)
  return models.make_model(cfg, V)


def _init(model, tokens):
  return model.init(jax.random.key(0), tokens, model.initial_carry(tokens.shape[0]),
                    train=False)['params']


def _tokens(seed=0):
  return jax.random.randint(jax.random.key(seed), (B, T), 0, V, jnp.int32)


def test_locked_dropout_mask_shared_over_time_and_differs_across_rows():
  x = jnp.ones((8, T, 32))
  y = np.asarray(regularizers.locked_dropout(jax.random.key(1), x, 0.5))
  assert set(np.unique(y)) <= {0.0, 2.0}
  for t in range(1, T):
    np.testing.assert_array_equal(y[:, t], y[:, 0])  # one mask per sequence
  assert any(not np.array_equal(y[0, 0], y[b, 0]) for b in range(1, 8))


def test_locked_model_dropout_is_deterministic_per_key_and_off_in_eval():
  model = _model(num_layers=1, dropout_kind='locked', dropout_embed=0.5)
  tokens = jnp.zeros((B, T), jnp.int32)
  params = _init(model, tokens)
  out1, _ = model.apply({'params': params}, tokens, model.initial_carry(B),
                        train=True, rngs={'dropout': jax.random.key(2)})
  out2, _ = model.apply({'params': params}, tokens, model.initial_carry(B),
                        train=True, rngs={'dropout': jax.random.key(2)})
  np.testing.assert_array_equal(out1, out2)
  ev, _ = model.apply({'params': params}, tokens, model.initial_carry(B), train=False)
  ref, _ = _model(num_layers=1).apply({'params': params}, tokens,
                                      model.initial_carry(B), train=False)
  np.testing.assert_array_equal(ev, ref)  # eval: no dropout at all


def test_locked_output_dropout_mask_constant_over_time_via_sow():
  model = _model(dropout_kind='locked', dropout_output=0.5)
  tokens = _tokens()
  params = _init(model, tokens)
  _, state = model.apply({'params': params}, tokens, model.initial_carry(B),
                         train=True, rngs={'dropout': jax.random.key(5)},
                         mutable=['intermediates'])
  raw = np.asarray(state['intermediates']['last_raw'][0])
  dropped = np.asarray(state['intermediates']['last_dropped'][0])
  zero = dropped == 0  # LSTM outputs are never exactly 0, so 0 means dropped
  for t in range(1, T):
    np.testing.assert_array_equal(zero[:, t], zero[:, 0])
  assert any(not np.array_equal(zero[0, 0], zero[b, 0]) for b in range(1, B))
  np.testing.assert_allclose(dropped[~zero], 2.0 * raw[~zero], rtol=1e-6)


def test_embedding_dropout_zeroes_whole_rows_and_rescales():
  emb = jax.random.normal(jax.random.key(0), (50, 8))
  out = np.asarray(regularizers.embedding_dropout(jax.random.key(3), emb, 0.4))
  dropped = np.all(out == 0, axis=1)
  assert 0 < dropped.sum() < 50
  np.testing.assert_allclose(out[~dropped], np.asarray(emb)[~dropped] / 0.6,
                             rtol=1e-6)


def test_embedding_row_dropout_in_model_hits_every_occurrence():
  # Untied model: the embedding enters only through the lookup, so a dropped
  # word has exactly zero gradient, summed over ALL its occurrences, and a
  # kept one does not.
  model = _model(num_layers=1, dropout_embed_rows=0.5)
  tokens = jnp.array([[1, 2, 1, 3, 1, 2, 4]] * B, jnp.int32)
  params = _init(model, tokens)

  def logits_sum(p, key):
    return model.apply({'params': p}, tokens, model.initial_carry(B),
                       train=True, rngs={'dropout': key})[0].sum()

  used = {1, 2, 3, 4}
  saw_dropped = saw_kept = False
  for seed in range(4):
    grads = jax.grad(logits_sum)(params, jax.random.key(seed))['embedding']
    rows = np.abs(np.asarray(grads)).sum(axis=1)
    assert all(rows[w] == 0 for w in set(range(V)) - used)
    saw_dropped |= any(rows[w] == 0 for w in used)
    saw_kept |= any(rows[w] > 0 for w in used)
  assert saw_dropped and saw_kept
  # Lookup of a kept row is rescaled by 1/(1-p): the first-step input of a
  # 1-layer tanh RNN with zero state shows it directly.
  rnn = _model(num_layers=1, cell='rnn_tanh', dropout_embed_rows=0.5)
  p = _init(rnn, tokens)
  _, st = rnn.apply({'params': p}, tokens, rnn.initial_carry(B), train=True,
                    rngs={'dropout': jax.random.key(0)}, mutable=['intermediates'])
  h0 = np.asarray(st['intermediates']['last_raw'][0])[0, 0]
  layer = p['layer_0']
  word = int(tokens[0, 0])
  expect = {scale: np.tanh(np.asarray(p['embedding'][word]) * scale
                           @ np.asarray(layer['kernel_ih'])
                           + np.asarray(layer['bias_ih']))
            for scale in (0.0, 2.0)}
  assert any(np.allclose(h0, e, atol=1e-5) for e in expect.values())


def test_weight_drop_changes_only_kernel_hh():
  model = _model(num_layers=1, weight_drop=0.5)
  tokens = _tokens()
  params = _init(model, tokens)
  carry = model.initial_carry(B)

  def loss(p, key):
    logits, _ = model.apply({'params': p}, tokens, carry, train=True,
                            rngs={'dropout': key})
    return logits.sum()

  g = jax.grad(loss)(params, jax.random.key(1))['layer_0']
  g_ref = jax.grad(lambda p: _model(num_layers=1).apply(
      {'params': p}, tokens, carry, train=False)[0].sum())(params)['layer_0']
  khh = np.asarray(g['kernel_hh'])
  # Dropped recurrent weights get exactly zero gradient ...
  assert (khh == 0).mean() > 0.3
  assert (np.asarray(g_ref['kernel_hh']) == 0).mean() < 0.01
  # ... while the input projection still gets a dense gradient.
  assert (np.asarray(g['kernel_ih']) == 0).mean() < 0.01
  # Masks differ between keys (calls); eval is deterministic and undropped.
  g2 = jax.grad(loss)(params, jax.random.key(2))['layer_0']['kernel_hh']
  assert not np.array_equal(khh == 0, np.asarray(g2) == 0)
  ev1, _ = model.apply({'params': params}, tokens, carry, train=False)
  ev2, _ = _model(num_layers=1).apply({'params': params}, tokens, carry,
                                      train=False)
  np.testing.assert_array_equal(ev1, ev2)


def test_weight_drop_layer_outputs_match_manual_masked_kernel():
  layer = models.RecurrentLayer(cell='lstm', hidden_size=H, weight_drop=0.5)
  x = jax.random.normal(jax.random.key(0), (B, T, 5))
  carry = models.initial_carry('lstm', B, H)
  params = layer.init(jax.random.key(1), x, carry)['params']
  out, _ = layer.apply({'params': params}, x, carry, train=True,
                       rngs={'dropout': jax.random.key(4)})
  # Find the mask the layer used: the only key it draws is its make_rng.
  mask_key = layer.apply({'params': params}, method=lambda m: m.make_rng('dropout'),
                         rngs={'dropout': jax.random.key(4)})
  dropped = dict(params, kernel_hh=regularizers.drop_weights(
      mask_key, params['kernel_hh'], 0.5))
  ref, _ = layer.apply({'params': dropped}, x, carry, train=False)
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_defaults_are_off_and_validation():
  m = models.make_model(configs.base_config().model, V)
  assert (m.dropout_kind, m.dropout_embed_rows, m.weight_drop) == ('standard', 0, 0)
  with pytest.raises(ValueError, match='model.dropout_kind'):
    _model(dropout_kind='variational')
  with pytest.raises(ValueError, match='model.weight_drop'):
    _model(weight_drop=1.0)
  with pytest.raises(ValueError, match="only for model.type='rnn'"):
    _model(type='transformer', weight_drop=0.5)
