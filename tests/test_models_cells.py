"""Tests of the recurrent cells: scan == step loop, numpy equations, init."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import models
from rnnlm_jax.models import cells

B, T, D, H = 3, 7, 5, 6  # T=7 is not a multiple of the unroll factors used


def _inputs(seed=0, t=T):
  return jax.random.normal(jax.random.key(seed), (B, t, D), jnp.float32)


def _random_carry(cell, seed=1):
  keys = jax.random.split(jax.random.key(seed), 2)
  zeros = cells.initial_carry(cell, B, H)
  return tuple(
      0.5 * jax.random.normal(k, z.shape, jnp.float32)
      for k, z in zip(keys, zeros))


def _layer_and_params(cell, init_scale=0.5, forget_bias=0.0, **kwargs):
  layer = cells.RecurrentLayer(
      cell=cell, hidden_size=H, init_scale=init_scale,
      forget_bias=forget_bias, **kwargs)
  params = layer.init(
      jax.random.key(42), _inputs(), cells.initial_carry(cell, B, H))['params']
  return layer, params


def _python_loop(cell, params, carry, inputs, dtype=jnp.float32):
  """The unhoisted reference: a plain Python loop over `cell_step`."""
  outputs = []
  for t in range(inputs.shape[1]):
    carry, h_t = cells.cell_step(cell, params, carry, inputs[:, t], dtype)
    outputs.append(h_t)
  return jnp.stack(outputs, axis=1), carry


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _numpy_step(cell, p, carry, x):
  """The cell equations written out independently, in float64 numpy."""
  p = {k: np.asarray(v, np.float64) for k, v in p.items()}
  h = np.asarray(carry[0], np.float64)
  x_gates = x @ p['kernel_ih'] + p['bias_ih']
  h_gates = h @ p['kernel_hh']
  if cell == 'lstm':
    c = np.asarray(carry[1], np.float64)
    i, f, g, o = np.split(x_gates + h_gates, 4, axis=-1)  # i, f, g, o order
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return (_sigmoid(o) * np.tanh(c), c)
  if cell == 'gru':
    xr, xz, xn = np.split(x_gates, 3, axis=-1)
    hr, hz, hn = np.split(h_gates, 3, axis=-1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * (hn + p['bias_hn']))
    return ((1 - z) * n + z * h,)
  pre = x_gates + h_gates
  return (np.tanh(pre) if cell == 'rnn_tanh' else np.maximum(pre, 0.0),)


@pytest.mark.parametrize("cell", cells.gated_cells())
@pytest.mark.parametrize('nonzero_carry', [False, True])
def test_scan_equals_unhoisted_step_loop(cell, nonzero_carry):
  layer, params = _layer_and_params(cell, unroll=4)
  carry = _random_carry(cell) if nonzero_carry else cells.initial_carry(
      cell, B, H)
  inputs = _inputs()
  outputs, final = layer.apply({'params': params}, inputs, carry)
  want_outputs, want_final = _python_loop(cell, params, carry, inputs)
  assert outputs.shape == (B, T, H) and outputs.dtype == jnp.float32
  np.testing.assert_allclose(outputs, want_outputs, rtol=1e-5, atol=1e-6)
  assert len(final) == len(want_final) == (2 if cell == 'lstm' else 1)
  for got, want in zip(final, want_final):
    assert got.shape == (B, H) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", cells.gated_cells())
def test_unroll_does_not_change_results(cell):
  _, params = _layer_and_params(cell)
  carry, inputs = _random_carry(cell), _inputs()
  results = [
      cells.RecurrentLayer(cell=cell, hidden_size=H, unroll=unroll).apply(
          {'params': params}, inputs, carry) for unroll in (1, 4)]
  for got, want in zip(jax.tree_util.tree_leaves(results[1]),
                       jax.tree_util.tree_leaves(results[0])):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", cells.gated_cells())
def test_matches_numpy_equations(cell):
  """Catches a wrong gate order or a wrong equation in both code paths."""
  layer, params = _layer_and_params(cell, init_scale=0.8, forget_bias=1.0)
  carry, inputs = _random_carry(cell), _inputs(t=3)
  outputs, final = layer.apply({'params': params}, inputs, carry)
  want = carry
  for t in range(3):
    want = _numpy_step(cell, params, want, np.asarray(inputs[:, t], np.float64))
    np.testing.assert_allclose(outputs[:, t], want[0], rtol=1e-5, atol=1e-6)
  for got, w in zip(final, want):
    np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def test_lstm_single_step_by_hand():
  """One LSTM step with hand-made params, where each gate is distinct."""
  d, h = 2, 1
  params = {
      # Input weights of the i, f, g, o gates (in that order).
      'kernel_ih': jnp.array([[0.1, 0.2, 0.3, 0.4], [-0.5, 0.6, -0.7, 0.8]]),
      'bias_ih': jnp.array([0.01, 1.0, -0.02, 0.03]),
      'kernel_hh': jnp.array([[0.9, -1.0, 1.1, -1.2]]),
  }
  x, h0, c0 = np.array([[1.0, 2.0]]), np.array([[0.5]]), np.array([[-0.3]])
  pre = x @ np.asarray(params['kernel_ih']) + np.asarray(
      params['bias_ih']) + h0 @ np.asarray(params['kernel_hh'])
  i, f, g, o = (pre[:, k:k + 1] for k in range(4))
  c1 = _sigmoid(f) * c0 + _sigmoid(i) * np.tanh(g)
  h1 = _sigmoid(o) * np.tanh(c1)
  layer = cells.RecurrentLayer(cell='lstm', hidden_size=h)
  outputs, (h_new, c_new) = layer.apply(
      {'params': params}, jnp.asarray(x[:, None], jnp.float32),
      (jnp.asarray(h0, jnp.float32), jnp.asarray(c0, jnp.float32)))
  assert d == x.shape[1]
  np.testing.assert_allclose(c_new, c1, rtol=1e-6)
  np.testing.assert_allclose(h_new, h1, rtol=1e-6)
  np.testing.assert_allclose(outputs[:, 0], h1, rtol=1e-6)


@pytest.mark.parametrize('init_scale', [0.0, 0.1])
def test_forget_bias_is_added_to_the_f_gate_only(init_scale):
  _, params = _layer_and_params('lstm', init_scale=init_scale, forget_bias=2.0)
  bias = np.asarray(params['bias_ih']).reshape(4, H)  # rows: i, f, g, o
  s = init_scale
  assert np.all(np.abs(bias[[0, 2, 3]]) <= s)
  assert np.all(np.abs(bias[1] - 2.0) <= s)


@pytest.mark.parametrize("cell", cells.gated_cells())
def test_init_scale_bounds_every_param(cell):
  s = 0.05
  _, params = _layer_and_params(cell, init_scale=s)
  for leaf in jax.tree_util.tree_leaves(params):
    assert leaf.dtype == jnp.float32
    assert np.all(np.abs(leaf) <= s)
    assert np.max(np.abs(leaf)) > s / 2  # really spread over [-s, s]
    assert np.min(leaf) < 0 < np.max(leaf)


@pytest.mark.parametrize("cell", cells.gated_cells())
def test_default_init(cell):
  """init_scale=0: orthogonal recurrent blocks per gate, zero biases."""
  _, params = _layer_and_params(cell, init_scale=0.0)
  kernel_hh = np.asarray(params['kernel_hh'])
  for block in np.split(kernel_hh, cells.spec(cell).num_gates, axis=-1):
    np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-5)
  for name in ('bias_ih', 'bias_hn'):
    if name in params:
      assert not np.any(params[name])


def _dot_generals(jaxpr):
  """All dot_general equations of a jaxpr, split into (outside, in scans)."""
  outside, inside = [], []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == 'dot_general':
      outside.append(eqn)
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      sub_out, sub_in = _dot_generals(sub)
      (inside if eqn.primitive.name == 'scan' else outside).extend(sub_out)
      inside.extend(sub_in)
  return outside, inside


@pytest.mark.parametrize("cell", cells.gated_cells())
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_input_projection_is_hoisted_out_of_the_scan(cell, dtype):
  layer, params = _layer_and_params(cell, dtype=dtype)
  jaxpr = jax.make_jaxpr(lambda p, x, c: layer.apply({'params': p}, x, c))(
      params, _inputs(), cells.initial_carry(cell, B, H)).jaxpr
  outside, inside = _dot_generals(jaxpr)
  g = cells.spec(cell).num_gates
  # One fused input matmul over all T steps, one fused hidden matmul per step.
  assert [e.outvars[0].aval.shape for e in outside] == [(T, B, g * H)]
  assert [e.outvars[0].aval.shape for e in inside] == [(B, g * H)]
  for eqn in outside + inside:
    assert [v.aval.dtype for v in eqn.invars] == [jnp.dtype(dtype)] * 2
    assert eqn.outvars[0].aval.dtype == jnp.float32  # f32 accumulation


@pytest.mark.parametrize("cell", cells.gated_cells())
def test_bfloat16_matmuls(cell):
  layer, params = _layer_and_params(cell, init_scale=0.3)
  carry, inputs = _random_carry(cell), _inputs()
  want, _ = layer.apply({'params': params}, inputs, carry)
  bf16 = layer.clone(dtype=jnp.bfloat16)
  got, final = bf16.apply({'params': params}, inputs, carry)
  assert got.dtype == jnp.float32
  assert all(c.dtype == jnp.float32 for c in final)
  np.testing.assert_allclose(got, want, atol=5e-2)
  assert not np.allclose(got, want, atol=1e-7)  # bf16 really was used
  loop, _ = _python_loop(cell, params, carry, inputs, jnp.bfloat16)
  np.testing.assert_allclose(got, loop, atol=1e-5)
  # Params are created in f32 even for a bf16 layer.
  params_bf16 = bf16.init(jax.random.key(0), inputs, carry)['params']
  assert all(p.dtype == jnp.float32
             for p in jax.tree_util.tree_leaves(params_bf16))


def test_initial_carry_shapes():
  assert [c.shape for c in cells.initial_carry('lstm', 2, 3)] == [(2, 3)] * 2
  (h,) = cells.initial_carry('gru', 2, 3)
  assert h.shape == (2, 3) and h.dtype == jnp.float32 and not np.any(h)
  with pytest.raises(ValueError, match='lsmt'):
    cells.initial_carry('lsmt', 2, 3)


def _loss_weights(cell, seed=7):
  keys = jax.random.split(jax.random.key(seed), 3)
  w_out = jax.random.normal(keys[0], (B, T, H))
  w_carry = tuple(jax.random.normal(k, (B, H)) for k in keys[1:])
  return w_out, w_carry[:2 if cell == 'lstm' else 1]


@pytest.mark.parametrize("cell", cells.gated_cells())
def test_hand_written_backward_matches_autodiff(cell):
  # The layer's scan has a custom VJP (models/recurrence.py); autodiff of the
  # unhoisted Python loop is the reference, for params, inputs and carry.
  layer, params = _layer_and_params(cell, unroll=3, weight_grad_after_loop=True)
  carry, inputs = _random_carry(cell), _inputs()
  w_out, w_carry = _loss_weights(cell)

  def loss(run):
    def f(p, x, c):
      outputs, final = run(p, x, c)
      return jnp.sum(outputs * w_out) + sum(jnp.sum(a * w) for a, w in zip(final, w_carry))
    return jax.grad(f, argnums=(0, 1, 2))(params, inputs, carry)

  got = loss(lambda p, x, c: layer.apply({'params': p}, x, c))
  want = loss(lambda p, x, c: _python_loop(cell, p, c, x))
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
  assert float(jnp.abs(got[0]['kernel_hh']).max()) > 0


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
@pytest.mark.parametrize('after_loop', [False, True])
def test_where_the_weight_gradient_is_computed(cell, after_loop):
  # Autodiff of a scan adds h^T dG into a [H, G*H] accumulator at every step;
  # the custom backward computes it once after the loop.
  layer, params = _layer_and_params(cell, weight_grad_after_loop=after_loop)
  g = cells.spec(cell).num_gates

  def loss(p):
    outputs, _ = layer.apply({'params': p}, _inputs(), cells.initial_carry(cell, B, H))
    return jnp.sum(outputs)

  jaxpr = jax.make_jaxpr(jax.grad(loss))(params).jaxpr
  outside, inside = _dot_generals(jaxpr)
  weight_shaped = {(H, g * H), (g * H, H)}  # autodiff makes it transposed
  shapes_inside = {e.outvars[0].aval.shape for e in inside}
  shapes_outside = {e.outvars[0].aval.shape for e in outside}
  assert bool(weight_shaped & shapes_inside) == (not after_loop), shapes_inside
  assert ((H, g * H) in shapes_outside) == after_loop, shapes_outside


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_bfloat16_gradients_are_close_to_float32(cell):
  layer, params = _layer_and_params(cell, init_scale=0.3)
  carry, inputs = _random_carry(cell), _inputs()

  def grads(l):
    return jax.grad(lambda p: jnp.sum(l.apply({'params': p}, inputs, carry)[0]))(params)

  autodiff = layer.clone(weight_grad_after_loop=False)
  got = grads(layer.clone(weight_grad_after_loop=True, dtype=jnp.bfloat16))
  want = grads(autodiff)
  for name in got:
    assert got[name].dtype == jnp.float32
    np.testing.assert_allclose(got[name], want[name], atol=0.1, rtol=0.05)
