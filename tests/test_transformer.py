"""The transformer LM: causality, the token-memory carry, config checks, and a
run through the unchanged training loop, evaluation and sampling."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import configs, metrics, models
from rnnlm_jax.training import inference, trainer
from test_train_loop import tiny_config as rnn_tiny_config

V, B, T, M = 13, 2, 6, 8


def _cfg(**overrides):
  """The model section with type 'transformer'; overrides of the
  transformer's own options go into model.transformer."""
  cfg = configs.base_config().model.to_dict()
  cfg.update(type='transformer', num_layers=2)
  cfg['transformer'].update(d_model=16, num_heads=2, mlp_dim=32, memory_len=M,
                            max_len=32)
  for key, value in overrides.items():
    (cfg['transformer'] if key in cfg['transformer'] else cfg)[key] = value
  return cfg


def _params(model):
  tokens = jnp.zeros((B, T), jnp.int32)
  return jax.jit(lambda: model.init(jax.random.key(0), tokens,
                                    model.initial_carry(B), train=False))()['params']


@functools.partial(jax.jit, static_argnames=('model',))
def _apply(model, params, tokens, carry):
  return model.apply({'params': params}, tokens, carry, train=False)


def _tokens(seed, t=T):
  return jax.random.randint(jax.random.key(seed), (B, t), 0, V, jnp.int32)


@pytest.mark.parametrize('position', ['learned', 'sinusoidal'])
def test_shapes_and_causality(position):
  model = models.make_model(_cfg(position=position), V)
  assert isinstance(model, models.TransformerLM)
  params = _params(model)
  tokens = _tokens(0)
  logits, carry = _apply(model, params, tokens, model.initial_carry(B))
  assert logits.shape == (B, T, V) and logits.dtype == jnp.float32
  assert jax.tree.map(jnp.shape, carry) == ((B, M),)
  # Changing token 3 changes no logit before position 3, and some after it.
  changed = tokens.at[:, 3].set((tokens[:, 3] + 1) % V)
  logits2, _ = _apply(model, params, changed, model.initial_carry(B))
  np.testing.assert_array_equal(logits[:, :3], logits2[:, :3])
  assert np.abs(np.asarray(logits[:, 3:] - logits2[:, 3:])).max() > 1e-6


def test_carried_memory_equals_one_long_call():
  """Windows with the carry (and token-by-token sampling steps) see what one
  call over the whole text sees, while the memory covers it."""
  model = models.make_model(_cfg(), V)
  params = _params(model)
  tokens = _tokens(1, 8)
  full, _ = _apply(model, params, tokens, model.initial_carry(B))
  first, carry = _apply(model, params, tokens[:, :5], model.initial_carry(B))
  second, carry = _apply(model, params, tokens[:, 5:], carry)
  np.testing.assert_allclose(np.concatenate([first, second], 1), full, atol=1e-5)
  np.testing.assert_array_equal(carry[0], tokens)  # memory: the last M tokens
  carry, steps = model.initial_carry(B), []
  for t in range(8):
    logits, carry = _apply(model, params, tokens[:, t:t + 1], carry)
    steps.append(logits)
  np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)


def test_no_memory_makes_windows_independent():
  model = models.make_model(_cfg(memory_len=0), V)
  params = _params(model)
  a, carry = _apply(model, params, _tokens(2), model.initial_carry(B))
  b, _ = _apply(model, params, _tokens(3), carry)
  c, _ = _apply(model, params, _tokens(3), model.initial_carry(B))
  np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize('overrides, key', [
    (dict(type='transfomer'), 'model.type'),
    (dict(num_heads=3), 'model.transformer.num_heads'),
    (dict(d_model=0), 'model.transformer.d_model'),
    (dict(position='rotary'), 'model.transformer.position'),
    (dict(memory_len=-1), 'model.transformer.memory_len'),
    (dict(max_len=8), 'model.transformer.max_len'),
    (dict(mlp_dim=-4), 'model.transformer.mlp_dim'),
    (dict(attention_dropout=1.0), 'model.transformer.attention_dropout'),
])
def test_bad_values_name_the_key(overrides, key):
  with pytest.raises(ValueError, match=key.replace('.', r'\.')):
    models.make_model(_cfg(**overrides), V)


def test_window_longer_than_the_position_table_names_max_len():
  model = models.make_model(_cfg(memory_len=4, max_len=8), V)
  with pytest.raises(ValueError, match=r'model\.transformer\.max_len'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((B, 5), jnp.int32),
                                      model.initial_carry(B), train=False))


def test_rnn_is_still_the_default():
  cfg = configs.base_config().model.to_dict()
  assert cfg['type'] == 'rnn'
  assert isinstance(models.make_model(cfg, V), models.RecurrentLM)


def tiny_config(num_steps=60):
  """test_train_loop's tiny synthetic run, with a tiny transformer."""
  c = rnn_tiny_config(num_steps, dropout=0.1)  # exercises the dropout key
  c.model.type = 'transformer'
  c.model.num_layers, c.model.transformer.d_model, c.model.transformer.num_heads = 1, 16, 2
  c.model.transformer.mlp_dim, c.model.transformer.memory_len, c.model.transformer.max_len = 32, 8, 16
  c.model.dropout_output = 0.0
  c.train.eval_every_steps = 30
  return c


def test_trains_through_the_unchanged_loop(tmp_path):
  """train_step with the carry sharded over 4 devices, eval with the carry,
  the batch-1 test pass, checkpoints, resume check and sampling."""
  config = tiny_config()
  results = trainer.train_and_evaluate(config, str(tmp_path))
  losses = [l['loss'] for l in metrics.read_jsonl(str(tmp_path / 'metrics.jsonl'))
            if l['split'] == 'train']
  assert len(losses) == 6 and losses[-1] < 0.8 * losses[0]
  assert results['valid_ppl'] < 0.8 * 12  # learned the chain (uniform: 12)
  assert results['test_ppl'] < 0.8 * 12
  assert json.loads((tmp_path / 'config.json').read_text())['model']['type'] == 'transformer'
  assert len(results['sample'].split()) == 12
  scores = inference.evaluate_checkpoint(config, str(tmp_path), 'valid')
  assert scores['ppl'] == pytest.approx(results['valid_ppl'], rel=1e-4)
