"""PyTorch's LSTM/GRU layout (two biases) and init, as AWD-LSTM trains with.

The reference is torch.nn.LSTM / torch.nn.GRU's documented equations written
out with PyTorch's parameter names and shapes (weight_ih [G*H, D], weight_hh
[G*H, H], bias_ih [G*H], bias_hh [G*H]) in a plain Python loop over time;
torch itself is not installed in the venv.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnlm_jax import configs, data, models
from rnnlm_jax.models import cells
from rnnlm_jax.training import steps

B, T, D, H, V = 3, 5, 4, 6, 11


def _torch_lstm(p, x, h, c):
  """torch.nn.LSTM (one layer, batch_first): x [B, T, D] -> outputs [B, T, H]."""
  out = []
  for t in range(x.shape[1]):
    gates = (x[:, t] @ p['weight_ih'].T + p['bias_ih']
             + h @ p['weight_hh'].T + p['bias_hh'])
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    out.append(h)
  return jnp.stack(out, axis=1)


def _torch_gru(p, x, h):
  """torch.nn.GRU (one layer, batch_first), gates r, z, n."""
  out = []
  for t in range(x.shape[1]):
    xr, xz, xn = jnp.split(x[:, t] @ p['weight_ih'].T + p['bias_ih'], 3, -1)
    hr, hz, hn = jnp.split(h @ p['weight_hh'].T + p['bias_hh'], 3, -1)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h = (1.0 - z) * n + z * h
    out.append(h)
  return jnp.stack(out, axis=1)


def _torch_params(cell, seed=0):
  g = {'lstm': 4, 'gru': 3}[cell]
  k = jax.random.split(jax.random.key(seed), 4)
  u = lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -0.5, 0.5)
  return {'weight_ih': u(k[0], (g * H, D)), 'weight_hh': u(k[1], (g * H, H)),
          'bias_ih': u(k[2], (g * H,)), 'bias_hh': u(k[3], (g * H,))}


def _ours(cell, p):
  """The same numbers in RecurrentLayer(two_biases=True)'s params."""
  ours = {'kernel_ih': p['weight_ih'].T, 'kernel_hh': p['weight_hh'].T,
          'bias_ih': p['bias_ih'], 'bias_hh': p['bias_hh']}
  if cell == 'gru':  # b_hh's n block sits inside r * (.): bias_hn
    ours['bias_hh'], ours['bias_hn'] = p['bias_hh'][:2 * H], p['bias_hh'][2 * H:]
  return ours


@pytest.mark.parametrize('cell, after_loop', [('lstm', True), ('lstm', False),
                                              ('gru', True)])
def test_two_biases_match_torch_outputs_and_bias_gradients(cell, after_loop):
  layer = cells.RecurrentLayer(cell=cell, hidden_size=H, two_biases=True,
                               weight_grad_after_loop=after_loop)
  x = jax.random.normal(jax.random.key(1), (B, T, D))
  h0 = 0.3 * jax.random.normal(jax.random.key(2), (B, H))
  c0 = 0.3 * jax.random.normal(jax.random.key(3), (B, H))
  carry = (h0, c0) if cell == 'lstm' else (h0,)
  shapes = jax.eval_shape(lambda: layer.init(jax.random.key(0), x, carry))
  p = _torch_params(cell)
  ours = _ours(cell, p)
  assert jax.tree.map(jnp.shape, shapes['params']) == jax.tree.map(jnp.shape, ours)
  w = jax.random.normal(jax.random.key(4), (B, T, H))  # a loss sum(w * out)

  def reference(p):
    out = (_torch_lstm(p, x, h0, c0) if cell == 'lstm' else _torch_gru(p, x, h0))
    return jnp.sum(w * out), out

  def mine(q):
    out, _ = layer.apply({'params': q}, x, carry)
    return jnp.sum(w * out), out

  # jitted: op by op, the loops compile dozens of tiny programs
  (_, ref_out), ref_grads = jax.jit(jax.value_and_grad(reference, has_aux=True))(p)
  (_, out), grads = jax.jit(jax.value_and_grad(mine, has_aux=True))(ours)
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
  ref_hh = ref_grads['bias_hh']
  got_hh = (grads['bias_hh'] if cell == 'lstm'
            else jnp.concatenate([grads['bias_hh'], grads['bias_hn']]))
  np.testing.assert_allclose(grads['bias_ih'], ref_grads['bias_ih'],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got_hh, ref_hh, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads['kernel_hh'], ref_grads['weight_hh'].T,
                             rtol=1e-5, atol=1e-6)
  # cell_step, the unhoisted reference, reads bias_hh too.
  step_carry, h1 = cells.cell_step(cell, ours, carry, x[:, 0])
  np.testing.assert_allclose(h1, out[:, 0], rtol=1e-5, atol=1e-6)
  assert len(step_carry) == len(carry)


def _lm(two_biases, **overrides):
  cfg = configs.base_config().model.to_dict()
  cfg.update(num_layers=1, hidden_size=H, embed_size=H, unroll=1,
             two_biases=two_biases, **overrides)
  return models.make_model(cfg, V)


def test_one_sgd_step_moves_the_two_biases_sum_twice_as_far():
  tokens = np.random.default_rng(0).integers(0, V, (B, T + 1)).astype(np.int32)
  batch = data.Batch(jnp.asarray(tokens[:, :-1]), jnp.asarray(tokens[:, 1:]),
                     jnp.ones((B, T), jnp.float32))
  one, two = _lm(False), _lm(True)
  state_one = steps.create_train_state(one, optax.sgd(0.5), 0, B, T)
  state_two = steps.create_train_state(two, optax.sgd(0.5), 0, B, T)
  # The same function: the one-bias model's params, bias_hh = 0.
  params = jax.tree.map(jnp.array, state_one.params)
  layer = dict(params['layer_0'], bias_hh=jnp.zeros_like(params['layer_0']['bias_ih']))
  state_two = state_two.replace(params=dict(params, layer_0=layer))
  bias_before = np.asarray(params['layer_0']['bias_ih'])
  new_one, _, m_one = steps.train_step(state_one, batch, one.initial_carry(B))
  new_two, _, m_two = steps.train_step(state_two, batch, two.initial_carry(B))
  np.testing.assert_allclose(m_one['loss'], m_two['loss'], rtol=1e-6)
  moved_one = np.asarray(new_one.params['layer_0']['bias_ih']) - bias_before
  l2 = new_two.params['layer_0']
  moved_two = np.asarray(l2['bias_ih']) + np.asarray(l2['bias_hh']) - bias_before
  assert np.abs(moved_one).max() > 1e-4
  np.testing.assert_allclose(moved_two, 2.0 * moved_one, rtol=1e-4, atol=1e-7)
  # Both biases count in the global gradient norm: |g|^2 + |g_bias|^2.
  g_bias_sq = float(np.sum((moved_one / 0.5) ** 2))
  assert float(m_two['grad_norm']) ** 2 == pytest.approx(
      float(m_one['grad_norm']) ** 2 + g_bias_sq, rel=1e-4)


def test_pytorch_init_ranges_per_layer():
  cfg = configs.base_config().model.to_dict()
  cfg.update(num_layers=3, hidden_size=64, embed_size=25, tie_embeddings=True,
             init_scheme='pytorch', two_biases=True, init_scale=0.1, unroll=1)
  model = models.make_model(cfg, 500)
  tokens = jnp.zeros((1, 2), jnp.int32)
  params = jax.jit(lambda: model.init(jax.random.key(0), tokens,
                                      model.initial_carry(1), train=False))()['params']
  for i, size in enumerate(model.layer_sizes()):  # (64, 64, 25)
    bound = size ** -0.5
    layer = params[f'layer_{i}']
    assert set(layer) == {'kernel_ih', 'kernel_hh', 'bias_ih', 'bias_hh'}
    for name, value in layer.items():
      top = float(jnp.abs(value).max())
      assert 0.9 * bound < top <= bound, (i, name, top, bound)
  top = float(jnp.abs(params['embedding']).max())
  assert 0.099 < top <= 0.1
  assert set(params) == {'embedding', 'layer_0', 'layer_1', 'layer_2',
                         'output_bias'}  # tied: no output kernel
  np.testing.assert_array_equal(params['output_bias'], 0.0)


def test_uniform_init_is_unchanged_and_bad_values_fail():
  cfg = configs.base_config().model.to_dict()
  cfg.update(num_layers=1, hidden_size=64, embed_size=25, unroll=1)
  model = models.make_model(cfg, 500)
  params = jax.jit(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 2), jnp.int32), model.initial_carry(1),
      train=False))()['params']
  assert 'bias_hh' not in params['layer_0']
  for value in jax.tree_util.tree_leaves(params):
    assert 0.09 < float(jnp.abs(value).max()) <= 0.1
  for key, value, match in (('init_scheme', 'torch', 'model.init_scheme'),
                            ('two_biases', 1, 'model.two_biases')):
    bad = dict(cfg, **{key: value})
    with pytest.raises(ValueError, match=match):
      models.make_model(bad, 5)
