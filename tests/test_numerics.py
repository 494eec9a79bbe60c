"""Non-finite steps are skipped and counted; a diverged run stops clearly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import data, metrics
from rnnlm_jax.training import parallel, trainer
from rnnlm_jax.training.steps import train_step
from test_train_loop import tiny_config


def _step(run, batch):
  batch = parallel.to_global(batch, run.batch_sharding, run.config.train.batch_size)
  return train_step(run.state, batch, run.carry,
                    loss_normalization=run.config.train.loss_normalization)


def test_nan_step_is_skipped_and_the_next_one_applies(tmp_path):
  run = trainer.open_stage(tiny_config(10), str(tmp_path))
  windows = data.bptt_windows(run.corpus.train, 4, 8)
  before = jax.device_get(run.state.params)
  good = next(windows)
  poisoned = good._replace(mask=np.full_like(good.mask, np.nan))
  run.state, run.carry, m = _step(run, poisoned)
  assert float(m['skipped']) == 1.0 and int(run.state.step) == 1
  assert int(run.state.nonfinite_run) == 1
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(run.state.params))):
    np.testing.assert_array_equal(a, b)  # untouched by the NaN step
  for leaf in jax.tree.leaves(run.carry):
    assert np.all(np.isfinite(np.asarray(leaf)))  # NaN state not carried on
  run.state, run.carry, m = _step(run, next(windows))
  assert float(m['skipped']) == 0.0 and int(run.state.nonfinite_run) == 0
  changed = [not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(run.state.params)))]
  assert all(changed)


def test_diverged_run_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
  config = tiny_config(40)
  config.train.max_nonfinite_steps = 3
  config.train.checkpoint_every_steps = 5
  config.train.num_steps = 10
  first = trainer.open_stage(config, str(tmp_path))
  writer = metrics.MetricWriter(str(tmp_path))
  trainer.fit(first, writer)  # 10 good steps, checkpoints at 5 and 10
  config.train.num_steps = 40
  run = trainer.open_stage(config, str(tmp_path))
  assert run.step == 10
  run.state = run.state.replace(params=jax.tree.map(lambda p: p * jnp.nan, run.state.params))
  with pytest.raises(trainer.NonFiniteError,
                     match='NaN/inf for 3 consecutive steps') as info:
    trainer.fit(run, writer)
  writer.close()
  assert info.value.step <= 10 + 3 + 1  # stopped right away, not at step 40
  # The remedy names the values in use.
  assert f'now {config.train.learning_rate:g}' in str(info.value)
  assert run.checkpointer.steps()[-1] == 10  # the finished checkpoint is intact
  restored = trainer.open_stage(config, str(tmp_path))
  assert restored.step == 10
  assert all(np.all(np.isfinite(np.asarray(p)))
             for p in jax.tree.leaves(restored.state.params))
