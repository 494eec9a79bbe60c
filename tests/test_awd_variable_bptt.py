"""Variable BPTT: bounded window lengths (compilations) and lr scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import configs, data, models
from rnnlm_jax.data import variable_bptt
from rnnlm_jax.train import inference, optim, steps, trainer

from conftest import count_compiles
from test_train_loop import tiny_config


def test_plan_lengths_are_few_and_distributed_as_awd():
  lengths = []
  for epoch in range(40):
    plan = variable_bptt.epoch_plan(100, 10_000, 70, seed=0, epoch=epoch,
                                    p_full=0.95, std=5.0, bucket=5)
    assert len(plan) == 100
    lengths += [w.length for w in plan]
  distinct = set(lengths)
  assert len(distinct) <= variable_bptt.max_distinct_lengths(70, 5.0, 5) == 10
  assert distinct <= set(range(60, 81, 5)) | set(range(25, 46, 5))
  assert 0.02 < np.mean(np.asarray(lengths) < 50) < 0.08  # ~5% half-length
  assert abs(np.mean(lengths) - (0.95 * 70 + 0.05 * 35)) < 1.0
  # Deterministic per (seed, epoch): a resumed run reads the same windows.
  again = variable_bptt.epoch_plan(100, 10_000, 70, seed=0, epoch=39,
                                   p_full=0.95, std=5.0, bucket=5)
  assert again == plan


def test_windows_are_contiguous_next_token_batches():
  stream = np.arange(4 * 50)
  plan = variable_bptt.epoch_plan(5, 50, 8, seed=1, epoch=0, p_full=0.5,
                                  std=2.0, bucket=2)
  batches = list(variable_bptt.windows(stream, 4, plan, start=1, rows=(2, 4)))
  assert len(batches) == 4
  table = stream.reshape(4, 50)
  for window, batch in zip(plan[1:], batches):
    lo, n = window
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == (2, n)
    np.testing.assert_array_equal(batch.inputs, table[2:4, lo:lo + n])
    np.testing.assert_array_equal(batch.targets, table[2:4, lo + 1:lo + n + 1])


def _sgd_state(variable):
  c = configs.base_config()
  c.train.optimizer, c.train.learning_rate, c.train.clip_norm = 'sgd', 0.5, 0.0
  c.train.schedule, c.train.variable_bptt = 'constant', variable
  tx, _ = optim.make_optimizer(c.train, 10, 100)
  cfg = c.model.to_dict()
  cfg.update(num_layers=1, hidden_size=4, embed_size=4, cell='gru')
  model = models.make_model(cfg, 7)
  return model, steps.create_train_state(model, tx, 0, 2, 5)


def test_lr_scale_scales_the_update_exactly():
  toks = np.random.default_rng(0).integers(0, 7, (2, 6)).astype(np.int32)
  batch = data.Batch(jnp.asarray(toks[:, :-1]), jnp.asarray(toks[:, 1:]),
                     jnp.ones((2, 5), jnp.float32))
  deltas = {}
  for scale in (None, 1.0, 0.5):
    model, state = _sgd_state(variable=scale is not None)
    before = jax.tree.map(np.asarray, state.params)
    extra = {} if scale is None else {'lr_scale': np.float32(scale)}
    new, _, _ = steps.train_step(state, batch, model.initial_carry(2), **extra)
    deltas[scale] = jax.tree.map(lambda a, b: np.asarray(a) - b, new.params, before)
  for key in (1.0, 0.5):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, key * b, rtol=1e-5,
                                                         atol=1e-8),
                 deltas[key], deltas[None])


def test_loop_compiles_a_bounded_number_of_shapes_and_scales_lr(tmp_path,
                                                                monkeypatch):
  config = tiny_config(num_steps=40)
  config.train.seq_len = 12
  config.train.variable_bptt = True
  config.train.bptt_std, config.train.bptt_bucket = 2.0, 2
  config.train.optimizer, config.train.learning_rate = 'sgd', 0.5
  calls = []
  real = trainer.train_step

  def spy(state, batch, carry, **kwargs):
    calls.append((batch.inputs.shape[1], float(kwargs['lr_scale'])))
    return real(state, batch, carry, **kwargs)

  monkeypatch.setattr(trainer, 'train_step', spy)
  with count_compiles('train_step') as compiles:
    trainer.train_and_evaluate(config, str(tmp_path))
  compiled = len(compiles)
  bound = variable_bptt.max_distinct_lengths(12, 2.0, 2)
  lengths = {n for n, _ in calls}
  assert len(calls) == 40 and len(lengths) > 1
  # (<=: a shape another test compiled already is not compiled again)
  assert compiled <= len(lengths) <= bound
  for n, scale in calls:
    assert scale == pytest.approx(n / 12)


def test_config_validation():
  c = configs.base_config()
  assert c.train.variable_bptt is False
  c.train.variable_bptt = True
  c.data.mode = 'sentence'
  with pytest.raises(ValueError, match='train.variable_bptt'):
    configs.validate(c)
