"""xLSTM: the mLSTM's chunkwise form equals its recurrence, the sLSTM is the
paper's equations with block-diagonal heads, stepping token by token
reproduces a window, and the cells and the xlstm model train."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import config_checks, configs, models
from rnnlm_jax.models import mlstm_kernels, recurrence, xlstm_cells
from rnnlm_jax.training import inference, trainer
from tests.test_train_loop import tiny_config

B, NH, DK, DV = 2, 3, 4, 5


def _inputs(key, steps, gate_scale=3.0):
  ks = jax.random.split(key, 5)
  q = jax.random.normal(ks[0], (B, NH, steps, DK))
  k = jax.random.normal(ks[1], (B, NH, steps, DK)) / np.sqrt(DK)
  v = jax.random.normal(ks[2], (B, NH, steps, DV))
  i_pre = gate_scale * jax.random.normal(ks[3], (B, NH, steps))
  f_pre = 2.0 + gate_scale * jax.random.normal(ks[4], (B, NH, steps))
  return q, k, v, i_pre, f_pre


def _carried_state():
  """A state as training carries it: the end of an earlier window."""
  _, state = mlstm_kernels.recurrent(
      *_inputs(jax.random.key(1), 6), mlstm_kernels.zero_state(B, NH, DK, DV))
  assert float(jnp.abs(state[0]).max()) > 0.1
  return state


def _loss(fn):
  def loss(*args):
    h, state = fn(*args)
    return (jnp.sum(jnp.sin(h)) + jnp.sum(jnp.cos(state[0]))
            + jnp.sum(state[1] ** 2) + jnp.sum(state[2]))
  return loss


def _assert_close(a, b, rtol=1e-4):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    scale = float(jnp.abs(x).max()) + 1e-6
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=rtol * scale,
                               rtol=rtol)


def _value_and_grads(fn):
  return jax.jit(jax.value_and_grad(_loss(fn), tuple(range(6))))


@pytest.mark.parametrize('chunk_size', [3, 16])
def test_chunkwise_equals_the_recurrence_from_a_carried_state(chunk_size):
  # 10 steps: chunks of 3 leave a remainder of 1; 16 is one padded chunk.
  inputs = _inputs(jax.random.key(0), 10)
  state = _carried_state()
  chunked = lambda *a: mlstm_kernels.chunkwise(*a, chunk_size)
  _assert_close(jax.jit(mlstm_kernels.recurrent)(*inputs, state),
                jax.jit(chunked)(*inputs, state))
  _assert_close(_value_and_grads(mlstm_kernels.recurrent)(*inputs, state),
                _value_and_grads(chunked)(*inputs, state))


def _all_finite(tree):
  return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def _mlstm_form(form):
  return (mlstm_kernels.recurrent if form == 'recurrent'
          else lambda *a: mlstm_kernels.chunkwise(*a, 4))


@pytest.mark.parametrize('form', ['recurrent', 'chunkwise'])
@pytest.mark.parametrize('scale', [50.0, 500.0])
def test_mlstm_gates_of_plus_minus_scale_stay_finite(form, scale):
  # 500: input gates below -88 (seen in training), where exp(-m_t) overflows.
  q, k, v, i_pre, f_pre = _inputs(jax.random.key(2), 9)
  i_pre, f_pre = scale * jnp.sign(i_pre), -scale * jnp.sign(f_pre - 2.0)
  fn = _mlstm_form(form)
  value_and_grads = _value_and_grads(fn)
  for state in (mlstm_kernels.zero_state(B, NH, DK, DV), _carried_state()):
    out = jax.jit(fn)(q, k, v, i_pre, f_pre, state)
    assert _all_finite(out)
    assert _all_finite(value_and_grads(q, k, v, i_pre, f_pre, state))


@pytest.mark.parametrize('form', ['recurrent', 'chunkwise'])
def test_mlstm_with_every_input_gate_far_below_zero_has_finite_gradients(form):
  # A carried m of -100 and ĩ_t = -100: m_t = -100 at every step, so the
  # normalizer floor exp(-m_t) would be exp(100) = inf in f32, the output 0
  # and its gradient 0 * inf = NaN.
  q, k, v, _, f_pre = _inputs(jax.random.key(3), 9)
  i_pre = jnp.full(f_pre.shape, -100.0)
  c, n, m = mlstm_kernels.zero_state(B, NH, DK, DV)
  state = (c, n, m - 100.0)
  fn = _mlstm_form(form)
  h, _ = jax.jit(fn)(q, k, v, i_pre, f_pre, state)
  assert float(jnp.max(jnp.abs(h))) < 1e-20  # the true state is ~exp(-100)
  assert _all_finite(_value_and_grads(fn)(q, k, v, i_pre, f_pre, state))


def _slstm_reference(params, x, carry, heads):
  """The paper's sLSTM step by step, with an explicit per-head recurrence."""
  h, c, n, m = carry
  hidden = h.shape[-1]
  d = hidden // heads
  blocks = params['kernel_hh']  # [NH, d, 4, d]
  outputs = []
  for t in range(x.shape[1]):
    pre = x[:, t] @ params['kernel_ih'] + params['bias_ih']  # [B, 4H]
    rec = jnp.einsum('bhi,higj->bghj', h.reshape(-1, heads, d), blocks)
    pre = pre + rec.reshape(-1, 4 * hidden)
    i_t, f_t, z_t, o_t = jnp.split(pre, 4, axis=-1)
    log_f = jax.nn.log_sigmoid(f_t)
    m_new = jnp.where(n == 0, i_t, jnp.maximum(log_f + m, i_t))
    i, f = jnp.exp(i_t - m_new), jnp.exp(log_f + m - m_new)
    c, n, m = f * c + i * jnp.tanh(z_t), f * n + i, m_new
    h = jax.nn.sigmoid(o_t) * c / n
    outputs.append(h)
  return jnp.stack(outputs, 1), (h, c, n, m)


@pytest.mark.parametrize('after_loop', [True, False])
def test_slstm_layer_is_the_papers_equations_with_block_diagonal_heads(after_loop):
  layer = xlstm_cells.SLSTMLayer(hidden_size=8, num_heads=2,
                                 weight_grad_after_loop=after_loop)
  x = jax.random.normal(jax.random.key(0), (2, 5, 3))
  carry = tuple(jnp.zeros((2, 8)) for _ in range(4))
  params = layer.init(jax.random.key(1), x, carry)['params']
  assert params['kernel_hh'].shape == (2, 4, 4, 4)
  apply = lambda p, x, c: layer.apply({'params': p}, x, c)
  reference = lambda p, x, c: _slstm_reference(p, x, c, 2)
  out, last = jax.jit(apply)(params, x, carry)
  _assert_close(jax.jit(reference)(params, x, carry), (out, last))
  # Continuing from the carried state, and the same gradients.
  grads = lambda f: jax.jit(jax.grad(
      lambda p: jnp.sum(jnp.sin(f(p, x, last)[0]))))(params)
  _assert_close(grads(reference), grads(apply))


def test_slstm_gates_of_plus_minus_50_stay_finite():
  hidden = 4
  signs = jnp.sign(jax.random.normal(jax.random.key(3), (6, 2, 4 * hidden)))
  x_gates = 50.0 * signs
  kernel = jnp.zeros((hidden, 4 * hidden))
  carry = tuple(jnp.zeros((2, hidden)) for _ in range(4))

  def loss(x_gates):
    out, last = recurrence.scan(xlstm_cells.slstm_update, x_gates, kernel,
                                carry, {}, jnp.float32, 1)
    return jnp.sum(out) + sum(jnp.sum(c) for c in last[:3])

  assert _all_finite(jax.jit(jax.value_and_grad(loss))(x_gates))


def _model_config(kind):
  c = configs.base_config()
  m = c.model
  m.num_layers, m.hidden_size, m.embed_size = 2, 16, 8
  if kind == 'xlstm':
    m.type, m.xlstm.pattern, m.xlstm.chunk_size = 'xlstm', 'mslm', 3
  else:
    m.cell = kind
    m.mlstm.chunk_size = 3
  return m


@pytest.mark.parametrize('kind', ['slstm', 'mlstm', 'xlstm'])
def test_one_token_at_a_time_reproduces_the_window(kind):
  model = models.make_model(_model_config(kind), 11)
  tokens = jax.random.randint(jax.random.key(1), (2, 7), 0, 11)
  carry = model.initial_carry(2)
  params = model.init(jax.random.key(0), tokens, carry, train=False)['params']
  apply = jax.jit(lambda tokens, carry, train: model.apply(
      {'params': params}, tokens, carry, train=train), static_argnums=2)
  # A second window from the carried state, as training and sampling see it.
  _, carry = apply(tokens[:, ::-1], carry, False)
  logits, last = apply(tokens, carry, True)  # the training (chunkwise) form
  stepped = []
  for t in range(tokens.shape[1]):
    step_logits, carry = apply(tokens[:, t:t + 1], carry, False)
    stepped.append(step_logits)
  _assert_close((logits, last), (jnp.concatenate(stepped, 1), carry))


def test_mlstm_cell_state_follows_its_num_heads():
  m = _model_config('mlstm')
  m.mlstm.num_heads = 2
  carry = models.make_model(m, 11).initial_carry(3)
  assert [x.shape for x in carry[0]] == [(3, 2, 8, 8), (3, 2, 8), (3, 2)]


@pytest.mark.parametrize('key, value, match', [
    ('pattern', 'msx', r"model.xlstm.pattern='msx' must be"),
    ('num_heads', 5, r'model.xlstm.num_heads=5 must be a positive int dividing'),
    ('chunk_size', 0, r'model.xlstm.chunk_size=0'),
])
def test_bad_xlstm_options_fail_in_one_line(key, value, match):
  m = _model_config('xlstm')
  m.xlstm[key] = value
  with pytest.raises(ValueError, match=match):
    models.make_model(m, 11)


def test_bad_cell_heads_fail_in_one_line():
  m = _model_config('slstm')
  m.slstm.num_heads = 3
  model = models.make_model(m, 11)
  with pytest.raises(ValueError, match=r'model.slstm.num_heads=3 must be'):
    model.init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32),
               model.initial_carry(1), train=False)


def test_the_xlstm_model_trains(tmp_path):
  config = tiny_config(num_steps=40)
  config.model.type = 'xlstm'
  config.model.xlstm.pattern = 'ms'
  config.model.xlstm.chunk_size = 3  # windows of 8: a remainder chunk
  results = trainer.train_and_evaluate(config, str(tmp_path))
  assert results['valid_ppl'] < 0.8 * 12  # learns the chain (uniform: 12)


# The sLSTM's recurrence is the LSTM's scan (tested with it); its run is slow.
@pytest.mark.parametrize('cell', [pytest.param('slstm', marks=pytest.mark.slow),
                                  'mlstm'])
def test_the_cells_train_in_the_recurrent_lm(cell, tmp_path):
  config = tiny_config(num_steps=40)
  config.model.cell = cell
  config.model.mlstm.chunk_size = 3
  results = trainer.train_and_evaluate(config, str(tmp_path))
  assert results['valid_ppl'] < 0.8 * 12


_ABLATION = configs.__file__.rsplit('/rnnlm_jax/', 1)[0] + '/experiments/ablation_xlstm/config.py'


@pytest.mark.parametrize('smoke', [False, True])
def test_ablation_arms_are_valid(smoke):
  from rnnlm_jax import sweep
  module = sweep.load_module(_ABLATION)
  arms = sweep.arms(module, smoke)
  assert {a.name for a in arms} == {f'{c}_{m}' for c in module.CORPORA
                                    for m in module.MODELS}
  for arm in arms:
    config = sweep.arm_config(module, arm, smoke)
    config_checks.validate(config)
    models.validate(config.model)
    assert not smoke or config.train.num_steps <= 10


def test_ablation_arms_have_the_parameter_budget():
  from rnnlm_jax import sweep
  module = sweep.load_module(_ABLATION)
  for arm in sweep.arms(module):
    config = sweep.arm_config(module, arm)
    model = models.make_model(config.model,
                              module.VOCAB_SIZES[arm.name.split('_', 1)[0]])
    shapes = jax.eval_shape(lambda m=model: m.init(
        jax.random.key(0), jnp.zeros((1, 4), jnp.int32), m.initial_carry(1),
        train=False))['params']
    count = models.count_params(shapes)
    assert abs(count / module.BUDGET - 1) < 0.02, (arm.name, count)


@pytest.mark.slow
def test_a_resumed_xlstm_run_is_the_same_run(tmp_path):
  def config(steps):
    c = tiny_config(steps, dropout=0.2)
    c.model.type, c.model.xlstm.pattern, c.model.xlstm.chunk_size = 'xlstm', 'ms', 3
    return c

  straight, broken = str(tmp_path / 'straight'), str(tmp_path / 'broken')
  trainer.train_and_evaluate(config(30), straight)
  trainer.train_and_evaluate(config(15), broken)  # stops at 15, carry saved
  trainer.train_and_evaluate(config(30), broken)  # resumes with that carry
  final = lambda d: jax.device_get(inference.load_trained(config(30), d, 'latest')[1].params)
  for x, y in zip(jax.tree.leaves(final(straight)), jax.tree.leaves(final(broken))):
    np.testing.assert_array_equal(x, y)


def test_slstm_recurrent_init_makes_no_batched_qr():
  """jaxlib's batched CPU QR deadlocked XLA's 2-thread pool when two sLSTM
  blocks initialized at once; the init must make one [d, d] QR per block."""

  def equations(jaxpr):
    for eqn in jaxpr.eqns:
      yield eqn
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        yield from equations(sub)

  jaxpr = jax.make_jaxpr(lambda k: xlstm_cells._orthogonal_blocks(k, (2, 3, 4, 3)))(
      jax.random.PRNGKey(0)).jaxpr
  qr_shapes = {tuple(e.invars[0].aval.shape) for e in equations(jaxpr)
               if e.primitive.name == 'qr'}
  assert qr_shapes == {(3, 3)}
