"""The linear-recurrence cells (mingru, minlstm, lru, rglru): the parallel scan
equals a sequential lax.scan, one-token calls chain to the window's outputs,
the LM trains with each, and large pre-activations stay finite."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import models
from rnnlm_jax import sweep
from rnnlm_jax.models import cells
from rnnlm_jax.models import linear_recurrence
from rnnlm_jax.models import min_rnn
from rnnlm_jax.training import inference, trainer
from tests.test_train_loop import tiny_config

EXPERIMENTS = pathlib.Path(__file__).resolve().parent.parent / 'experiments'
NAMES = ('mingru', 'minlstm', 'lru', 'rglru')
B, T, D, H = 3, 7, 5, 8


def _layer(name, **options):
  return cells.spec(name).layer(hidden_size=H, **options)


def _carry(name, key):
  """A non-zero carried state (positive for the min cells, whose h > 0)."""
  zeros = cells.initial_carry(name, B, H)
  keys = jax.random.split(key, len(zeros))
  if name.startswith('min'):
    return tuple(jax.random.uniform(k, z.shape, minval=0.1, maxval=2.0)
                 for k, z in zip(keys, zeros))
  return tuple(jax.random.normal(k, z.shape) for k, z in zip(keys, zeros))


def _setup(name, seed=0):
  k_x, k_c, k_p = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.normal(k_x, (B, T, D))
  carry = _carry(name, k_c)
  params = _layer(name).init(k_p, x, carry)['params']
  return params, x, carry


def _loss_fn(apply):
  """apply(params, carry) -> (outputs, carry) to a scalar of both (fixed
  weights), whose gradients reach every output and the final carry."""
  def loss(params, carry):
    out, last = apply(params, carry)
    w = jnp.sin(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape)
    return jnp.sum(out * w) + sum(jnp.sum(jnp.cos(c)) for c in last)
  return loss


def _layer_loss(layer, x):
  return _loss_fn(lambda params, carry: layer.apply({'params': params}, x, carry))


def _close(a, b, rtol=2e-4, atol=2e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_the_four_cells_are_registered():
  assert set(NAMES) <= set(cells.CELLS)
  assert not set(NAMES) & set(cells.gated_cells())


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.complex64])
def test_associative_scan_equals_sequential_from_a_carried_state(dtype):
  k = jax.random.split(jax.random.key(1), 3)
  a = jax.random.uniform(k[0], (T, B, H), minval=0.5, maxval=1.0).astype(dtype)
  b = jax.random.normal(k[1], (T, B, H)).astype(dtype)
  h0 = jax.random.normal(k[2], (B, H)).astype(dtype)
  par = linear_recurrence.scan(a, b, h0, 'associative')
  seq = linear_recurrence.scan(a, b, h0, 'sequential')
  _close(par, seq)
  np.testing.assert_allclose(seq[0][0], a[0] * h0 + b[0], rtol=1e-6)


def test_log_scan_equals_linear_scan_and_handles_a_zero_state():
  k = jax.random.split(jax.random.key(2), 3)
  log_a = -jax.random.uniform(k[0], (T, B, H), maxval=3.0)
  log_b = jax.random.normal(k[1], (T, B, H))
  for h0 in (jax.random.uniform(k[2], (B, H)), jnp.zeros((B, H))):
    _close(linear_recurrence.log_scan(log_a, log_b, h0, 'associative'),
           linear_recurrence.scan(jnp.exp(log_a), jnp.exp(log_b), h0, 'sequential'))
  grad = jax.grad(lambda lb: linear_recurrence.log_scan(
      log_a, lb, jnp.zeros((B, H)))[0].sum())(log_b)
  assert np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize('name', NAMES)
def test_parallel_scan_equals_sequential_scan_with_a_carried_state(name):
  params, x, carry = _setup(name)
  par, seq = _layer(name, scan='associative'), _layer(name, scan='sequential')
  _close(par.apply({'params': params}, x, carry),
         seq.apply({'params': params}, x, carry))
  grads_par = jax.grad(_layer_loss(par, x), argnums=(0, 1))(params, carry)
  grads_seq = jax.grad(_layer_loss(seq, x), argnums=(0, 1))(params, carry)
  _close(grads_par, grads_seq, rtol=1e-3, atol=1e-4)
  assert all(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(grads_par[1]))


def _paper_step(name, params, h, x_t):
  """The papers' sequential equations for one step (no log space)."""
  k = x_t @ params['kernel_ih'] + params['bias_ih']
  if name == 'mingru':
    k_h, k_z = jnp.split(k, 2, axis=-1)
    z = jax.nn.sigmoid(k_z)
    return (1 - z) * h + z * min_rnn.g(k_h)
  k_h, k_f, k_i = jnp.split(k, 3, axis=-1)
  f, i = jax.nn.sigmoid(k_f), jax.nn.sigmoid(k_i)
  return f / (f + i) * h + i / (f + i) * min_rnn.g(k_h)


@pytest.mark.parametrize('name', ['mingru', 'minlstm'])
def test_log_space_parallel_min_cells_equal_the_papers_sequential_form(name):
  """The reference's parallel path took log g(h_0) for minLSTM's initial
  state where the sequential path used h_0; here both use h_0."""
  params, x, carry = _setup(name)

  def reference(params, carry):
    def step(h, x_t):
      h = _paper_step(name, params, h, x_t)
      return h, h
    last, out = jax.lax.scan(step, carry[0], jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(out, 0, 1), (last,)

  _close(_layer(name).apply({'params': params}, x, carry), reference(params, carry))
  _close(jax.grad(_layer_loss(_layer(name), x), argnums=(0, 1))(params, carry),
         jax.grad(_loss_fn(reference), argnums=(0, 1))(params, carry),
         rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize('name', NAMES)
def test_one_token_calls_chain_to_the_window_outputs(name):
  params, x, carry = _setup(name)
  layer = _layer(name)
  window, window_carry = layer.apply({'params': params}, x, carry, train=True)
  step = jax.jit(lambda c, x_t: layer.apply({'params': params}, x_t, c))
  outputs = []
  for t in range(T):
    out, carry = step(carry, x[:, t:t + 1])
    outputs.append(out)
  _close(jnp.concatenate(outputs, axis=1), window)
  _close(carry, window_carry)


def test_the_lm_trains_with_each_cell(tmp_path):
  for name in NAMES:
    config = tiny_config(num_steps=30)
    config.model.cell = name
    config.train.eval_every_steps = 30
    config.eval.test_batch_size = 4  # one eval shape: one compile fewer
    config.generate.length = 4  # sampling: one-token calls through the cell
    results = trainer.train_and_evaluate(config, str(tmp_path / name))
    assert results['valid_ppl'] < 0.9 * 12, (name, results['valid_ppl'])  # uniform: 12
    _, state, _ = inference.load_trained(config, str(tmp_path / name))  # checkpoint
    layer = _layer(name).init(jax.random.key(0), jnp.zeros((1, 2, 8)),
                              cells.initial_carry(name, 1, H))['params']
    assert set(state.params['layer_0']) == set(layer)


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('scan', linear_recurrence.METHODS)
def test_large_pre_activations_stay_finite(name, scan):
  params, x, carry = _setup(name)
  big = jax.tree.map(lambda p: p * 30.0, params)  # gates saturate at +-1e2..1e3
  layer = _layer(name, scan=scan)
  out, last = layer.apply({'params': big}, 100.0 * x, carry)
  assert np.isfinite(np.asarray(out)).all()
  assert all(np.isfinite(np.asarray(c)).all() for c in last)
  zero = cells.initial_carry(name, B, H)
  grads = jax.grad(_layer_loss(layer, 100.0 * x))(big, zero)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_lru_linear_phase_is_the_same_layer_with_the_phase_trained_directly():
  """phase='linear' starts at theta = exp(theta_log), computes the same
  outputs, and its phase gradient lacks the exp(theta_log) factor."""
  params, x, carry = _setup('lru')
  linear_params = dict(params)
  linear_params['theta'] = jnp.exp(linear_params.pop('theta_log'))
  init = _layer('lru', phase='linear').init(jax.random.key(0), x, carry)['params']
  assert 'theta' in init and 'theta_log' not in init
  out_log = _layer('lru').apply({'params': params}, x, carry)
  out_linear = _layer('lru', phase='linear').apply({'params': linear_params}, x, carry)
  _close(out_log, out_linear)
  g_log = jax.grad(_layer_loss(_layer('lru'), x))(params, carry)['theta_log']
  g_linear = jax.grad(_layer_loss(_layer('lru', phase='linear'), x))(
      linear_params, carry)['theta']
  # d/d theta_log = exp(theta_log) * d/d theta (the chain rule).
  np.testing.assert_allclose(np.asarray(g_log),
                             np.asarray(g_linear * linear_params['theta']),
                             rtol=1e-3, atol=1e-6)
  with pytest.raises(ValueError, match=r"model.lru.phase='exp' is not one of"):
    _layer('lru', phase='exp').init(jax.random.key(0), x, carry)


def test_rglru_input_norm_makes_the_layer_scale_invariant_and_keeps_its_gradients():
  """With input_norm the layer sees x / rms(x): scaling the input changes no
  output. Without it, a stack of layers fed small inputs (the uniform(+-0.1)
  init of a word LM) passes back gradients orders of magnitude smaller."""
  _, x, carry = _setup('rglru')
  layer = _layer('rglru', input_norm=True)
  params = layer.init(jax.random.key(1), x, carry)['params']
  assert params['norm_scale'].shape == (D,)
  _close(layer.apply({'params': params}, x, carry),
         layer.apply({'params': params}, 20.0 * x, carry))
  plain = _layer('rglru')
  plain_params = plain.init(jax.random.key(1), x, carry)['params']
  assert not np.allclose(plain.apply({'params': plain_params}, x, carry)[0],
                         plain.apply({'params': plain_params}, 20.0 * x, carry)[0])

  def input_grad_norm(layer, params, x):
    zero = cells.initial_carry('rglru', B, H)
    loss = lambda x: jnp.sum(jnp.sin(layer.apply({'params': params}, x, zero)[0]))
    return float(jnp.linalg.norm(jax.grad(loss)(x)))
  small = 0.05 * x
  assert input_grad_norm(layer, params, small) > 100 * input_grad_norm(
      plain, plain_params, small)


def test_bad_options_fail_with_one_line_naming_the_key():
  config = tiny_config()
  config.model.cell = 'mingru'
  with config.unlocked():
    config.model.mingru = {'scan': 'parallel'}
  model = models.make_model(config.model, 12)
  args = (jax.random.key(0), jnp.zeros((1, 2), jnp.int32), model.initial_carry(1))
  with pytest.raises(ValueError, match=r"model.mingru.scan='parallel' is not one of"):
    model.init(*args, train=False)
  config.model.mingru = {}
  config.model.weight_drop = 0.5
  model = models.make_model(config.model, 12)
  with pytest.raises(ValueError, match=r"model.weight_drop=0.5 .*'mingru' has none"):
    model.init(*args, train=False)


def _num_params(model_config, vocab_size):
  model = models.make_model(model_config, vocab_size)
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 2), jnp.int32), model.initial_carry(1),
      train=False))['params']
  return models.count_params(shapes)


@pytest.mark.parametrize('folder,vocab_size,others', [
    ('ablation_cells', 10_000, ()),
    ('ablation_cells_char', 99, ('transformer',))])
def test_the_ablation_arms_match_the_lstm_parameter_count(folder, vocab_size, others):
  module = sweep.load_module(str(EXPERIMENTS / folder / 'config.py'))
  counts = {a.name: _num_params(sweep.arm_config(module, a).model, vocab_size)
            for a in sweep.arms(module) if a.name in NAMES + ('lstm',) + others}
  assert set(counts) == set(NAMES) | {'lstm'} | set(others)
  for arm, count in counts.items():
    assert abs(count / counts['lstm'] - 1) < 0.004, (arm, count, counts['lstm'])
