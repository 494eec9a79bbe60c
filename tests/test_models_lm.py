"""Tests of the language model and its config factory."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rnnlm_jax import configs
from rnnlm_jax import models

V, B, T = 31, 4, 6


def _model(**overrides) -> models.RecurrentLM:
  """A tiny model from the base config with `overrides` on config.model."""
  cfg = configs.base_config().model.to_dict()
  cfg.update(num_layers=2, hidden_size=8, embed_size=8, unroll=1)
  cfg.update(overrides)
  return models.make_model(cfg, V)


def _tokens(seed=0, t=T, b=B):
  return jax.random.randint(jax.random.key(seed), (b, t), 0, V, jnp.int32)


def _real_init(model):
  """The model's own initializers (jitted)."""
  tokens = _tokens()
  init = jax.jit(lambda t, c: model.init(jax.random.key(0), t, c, train=False))
  return init(tokens, model.initial_carry(B))['params']


def _init(model, scale=0.3):
  """uniform(-scale, scale) params of the right structure, cheaply.

  Compiling the random initializers cost more than most tests themselves, so
  tests that are not about init fill the traced param shapes with numpy.
  """
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.key(0), _tokens(), model.initial_carry(B),
                         train=False))['params']
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map(
      lambda s: jnp.asarray(rng.uniform(-scale, scale, s.shape), s.dtype),
      shapes)


def _apply_eager(model, params, tokens, carry=None, train=False, key=None):
  carry = model.initial_carry(tokens.shape[0]) if carry is None else carry
  rngs = {} if key is None else {'dropout': key}
  return model.apply({'params': params}, tokens, carry, train=train, rngs=rngs)


# Jitted, the model being a static argument: flax run eagerly, op by op, made
# this file several times slower.
_apply = jax.jit(_apply_eager, static_argnames=('model', 'train'))


def _assert_trees_close(got, want, **tol):
  for g, w in zip(jax.tree_util.tree_leaves(got),
                  jax.tree_util.tree_leaves(want), strict=True):
    np.testing.assert_allclose(g, w, **tol)


def test_make_model_from_base_config():
  cfg = configs.base_config()
  model = models.make_model(cfg.model, 100)
  assert isinstance(model, models.RecurrentLM)
  assert (model.cell, model.num_layers, model.hidden_size) == ('lstm', 2, 200)
  assert model.dtype == jnp.float32
  assert cfg.model.unroll == 0 and model.unroll == 1  # auto: 1 on CPU
  cfg.model.unroll = 4
  assert models.make_model(cfg.model, 100).unroll == 4
  assert _model(dtype='bfloat16').dtype == jnp.bfloat16
  assert cfg.model.recurrent_backward == 'after_loop'
  assert model.weight_grad_after_loop
  assert not _model(recurrent_backward='autodiff').weight_grad_after_loop


@pytest.mark.parametrize('cell', models.CELLS)
def test_shapes_and_dtypes(cell):
  model = _model(cell=cell)
  params = _init(model)
  logits, carry = _apply(model, params, _tokens())
  assert logits.shape == (B, T, V) and logits.dtype == jnp.float32
  want = model.initial_carry(B)
  assert jax.tree_util.tree_structure(carry) == jax.tree_util.tree_structure(
      want)
  # [B, H] per entry, or the cell's own state shapes (the mLSTM's matrices).
  assert all(c.shape == w.shape and c.shape[0] == B and c.dtype == jnp.float32
             for c, w in zip(jax.tree_util.tree_leaves(carry),
                             jax.tree_util.tree_leaves(want)))


def test_initial_carry_on_unbound_module():
  model = _model(tie_embeddings=True, hidden_size=8, embed_size=5,
                 num_layers=3)
  carry = model.initial_carry(2)
  assert [[c.shape for c in layer] for layer in carry] == [
      [(2, 8), (2, 8)], [(2, 8), (2, 8)], [(2, 5), (2, 5)]]
  assert not any(np.any(c) for c in jax.tree_util.tree_leaves(carry))
  assert [len(layer) for layer in _model(cell='gru').initial_carry(2)] == [1, 1]


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_carrying_state_across_calls(cell):
  model = _model(cell=cell)
  params = _init(model)
  tokens = _tokens(t=2 * T)
  logits, carry = _apply(model, params, tokens)
  first, mid = _apply(model, params, tokens[:, :T])
  second, end = _apply(model, params, tokens[:, T:], carry=mid)
  np.testing.assert_allclose(
      jnp.concatenate([first, second], axis=1), logits, rtol=1e-5, atol=1e-6)
  _assert_trees_close(end, carry, rtol=1e-5, atol=1e-6)
  # And the carry really matters: a fresh state gives other logits.
  fresh, _ = _apply(model, params, tokens[:, T:])
  assert not np.allclose(fresh, second, atol=1e-4)


def test_bfloat16_close_to_float32():
  model = _model(init_scale=0.1)
  params = _init(model)
  want, _ = _apply(model, params, _tokens())
  bf16 = _model(init_scale=0.1, dtype='bfloat16')
  params_bf16 = jax.eval_shape(lambda: _init(bf16))
  assert all(p.dtype == jnp.float32
             for p in jax.tree_util.tree_leaves(params_bf16))
  got, carry = _apply(bf16, params, _tokens())
  assert got.dtype == jnp.float32
  assert all(c.dtype == jnp.float32 for c in jax.tree_util.tree_leaves(carry))
  np.testing.assert_allclose(got, want, atol=2e-2)
  assert not np.allclose(got, want, atol=1e-7)  # bf16 really was used


def test_bfloat16_output_projection_accumulates_in_float32():
  for tied in (False, True):
    model = _model(dtype='bfloat16', tie_embeddings=tied)
    params = _init(model)
    jaxpr = jax.make_jaxpr(lambda p: _apply_eager(model, p, _tokens()))(params)
    dots = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == 'dot_general']
    (out,) = [e for e in dots if e.outvars[0].aval.shape[-1] == V]
    assert [v.aval.dtype for v in out.invars] == [jnp.dtype(jnp.bfloat16)] * 2
    assert out.outvars[0].aval.dtype == jnp.float32


RATES = ('dropout_embed', 'dropout', 'dropout_output')


def test_eval_is_deterministic():
  model = _model(dropout_embed=0.3, dropout=0.3, dropout_output=0.3)
  params = _init(model)
  a, _ = _apply(model, params, _tokens(), key=jax.random.key(1))
  b, _ = _apply(model, params, _tokens(), key=jax.random.key(2))
  c, _ = _apply(model, params, _tokens())
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize('rate_key', RATES)
def test_each_dropout_is_active_in_training(rate_key):
  model = _model(**{rate_key: 0.5})
  params = _init(model)
  evals, _ = _apply(model, params, _tokens())
  a, _ = _apply(model, params, _tokens(), train=True, key=jax.random.key(1))
  b, _ = _apply(model, params, _tokens(), train=True, key=jax.random.key(2))
  a2, _ = _apply(model, params, _tokens(), train=True, key=jax.random.key(1))
  assert not np.allclose(a, b)
  assert not np.allclose(a, evals)
  np.testing.assert_array_equal(a, a2)  # same key, same mask


def test_zero_dropout_in_training_equals_eval():
  model = _model(**{k: 0.0 for k in RATES})
  params = _init(model)
  evals, _ = _apply(model, params, _tokens())
  train, _ = _apply(model, params, _tokens(), train=True, key=jax.random.key(3))
  np.testing.assert_array_equal(train, evals)


def test_tied_embeddings_share_the_matrix():
  untied, tied = _model(), _model(tie_embeddings=True)
  n_untied = models.count_params(_init(untied))
  params = _init(tied)
  assert n_untied - models.count_params(params) == 8 * V  # H = E = 8
  assert 'output_kernel' not in params
  # Perturb the embedding row of a token absent from the inputs: only the
  # output projection can see it, and only that token's logit may change.
  tokens = _tokens() % (V - 1)
  logits, _ = _apply(tied, params, tokens)
  params2 = dict(params, embedding=params['embedding'].at[V - 1].add(1.0))
  logits2, _ = _apply(tied, params2, tokens)
  np.testing.assert_array_equal(logits2[..., :V - 1], logits[..., :V - 1])
  assert not np.allclose(logits2[..., V - 1], logits[..., V - 1])


def test_tied_last_layer_uses_embed_size():
  model = _model(tie_embeddings=True, hidden_size=8, embed_size=5)
  params = _init(model)
  assert params['layer_0']['kernel_hh'].shape == (8, 4 * 8)
  assert params['layer_1']['kernel_hh'].shape == (5, 4 * 5)
  logits, _ = _apply(model, params, _tokens())
  assert logits.shape == (B, T, V)


@pytest.mark.parametrize('tied', [False, True])
def test_init_scale_bounds_every_param(tied):
  s = 0.07
  params = _real_init(_model(init_scale=s, tie_embeddings=tied))
  for leaf in jax.tree_util.tree_leaves(params):
    assert leaf.dtype == jnp.float32
    assert np.all(np.abs(leaf) <= s) and np.max(np.abs(leaf)) > s / 2


@pytest.mark.parametrize('key, value', [
    ('cell', 'lsmt'),
    ('dtype', 'float16'),
    ('num_layers', 0),
    ('hidden_size', -1),
    ('embed_size', 0),
    ('embed_size', 2.5),
    ('dropout', 1.0),
    ('dropout_embed', -0.1),
    ('dropout_output', 1.5),
    ('init_scale', -0.1),
    ('unroll', -1),
    ('recurrent_backward', 'manual'),
    ('tie_embeddings', 'yes'),
])
def test_bad_config_values_raise(key, value):
  with pytest.raises(ValueError) as info:
    _model(**{key: value})
  message = str(info.value)
  assert message.startswith(f'model.{key}={value!r} ')
  assert '\n' not in message


def test_bad_cell_message():
  with pytest.raises(ValueError, match=r"^model.cell='lsmt' is not one of \('lstm', "
                     r"'gru', .*\) \(did you mean 'lstm'\?\)$"):
    _model(cell='lsmt')
  with pytest.raises(ValueError, match='vocab_size'):
    models.make_model(configs.base_config().model, 0)


# Tying only changes the output layer, so not every cell needs both.
@pytest.mark.parametrize('cell, tied', [
    ('lstm', False), ('lstm', True), ('gru', True), ('rnn_tanh', False),
    ('rnn_relu', True)])
def test_gradients_reach_every_param(cell, tied):
  model = _model(cell=cell, tie_embeddings=tied, init_scale=0.3, dropout=0.2)
  tokens = jnp.arange(B * T, dtype=jnp.int32).reshape(B, T) % V

  def loss(params):
    logits, _ = _apply(model, params, tokens[:, :-1], train=True,
                       key=jax.random.key(0))
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, tokens[:, 1:]).mean()

  grads = jax.jit(jax.grad(loss))(_init(model))
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.all(np.isfinite(g)), path
    assert np.any(g != 0), path


def test_jit_and_batch_sharding_match_unsharded():
  assert jax.device_count() == 4  # faked by tests/conftest.py
  model = _model(tie_embeddings=True)
  params = _init(model)
  tokens = _tokens(b=8)
  want, want_carry = _apply(model, params, tokens)

  mesh = Mesh(np.array(jax.devices()), ('data',))
  batch, replicated = NamedSharding(mesh, P('data')), NamedSharding(mesh, P())
  got, got_carry = _apply(
      model,
      jax.device_put(params, replicated), jax.device_put(tokens, batch),
      jax.device_put(model.initial_carry(8), batch))
  assert got.sharding.is_equivalent_to(batch, got.ndim)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  _assert_trees_close(got_carry, want_carry, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_initial_carry_can_be_donated_straight_to_train_step(cell):
  # train_step donates the carry: its buffers must all be distinct (an LSTM
  # whose h and c were one zeros array would be donated twice and fail).
  from rnnlm_jax import data  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import steps  # pylint: disable=import-outside-toplevel
  model = _model(cell=cell, num_layers=2)
  carry = model.initial_carry(B)
  leaves = jax.tree_util.tree_leaves(carry)
  pointers = [leaf.unsafe_buffer_pointer() for leaf in leaves]
  assert len(set(pointers)) == len(leaves)
  state = steps.create_train_state(model, optax.sgd(0.1), 0, B, T)
  tokens = np.asarray(_tokens(t=T + 1))
  batch = data.Batch(jnp.asarray(tokens[:, :-1]), jnp.asarray(tokens[:, 1:]),
                     jnp.ones((B, T), jnp.float32))
  state, new_carry, metrics = steps.train_step(state, batch, carry)
  assert np.isfinite(float(metrics['loss']))
  assert jax.tree.structure(new_carry) == jax.tree.structure(carry)
  assert all(leaf.is_deleted() for leaf in leaves)  # donated, not copied
