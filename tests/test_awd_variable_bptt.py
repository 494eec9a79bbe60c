"""Variable BPTT: bounded window lengths (compilations) and lr scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import config_checks, configs, data, models
from rnnlm_jax.data import variable_bptt
from rnnlm_jax.training import inference, optim, steps, trainer

from conftest import count_compiles
from test_train_loop import tiny_config


def test_plan_lengths_are_few_and_distributed_as_awd():
  lengths = []
  for epoch in range(40):
    plan = variable_bptt.epoch_plan(7_001, 70, seed=0, epoch=epoch,
                                    p_full=0.95, std=5.0, bucket=5)
    assert 95 <= len(plan) <= 110  # 7,000 positions / ~68.25 per window
    lengths += [w.length for w in plan]
  distinct = set(lengths)
  assert len(distinct) <= variable_bptt.max_distinct_lengths(70, 5.0, 5) == 10
  assert distinct <= set(range(60, 81, 5)) | set(range(25, 46, 5))
  assert 0.02 < np.mean(np.asarray(lengths) < 50) < 0.08  # ~5% half-length
  assert abs(np.mean(lengths) - (0.95 * 70 + 0.05 * 35)) < 1.0
  # Deterministic per (seed, epoch): a resumed run reads the same windows.
  again = variable_bptt.epoch_plan(7_001, 70, seed=0, epoch=39,
                                   p_full=0.95, std=5.0, bucket=5)
  assert again == plan


def test_windows_are_contiguous_next_token_batches():
  stream = np.arange(4 * 50)
  plan = variable_bptt.epoch_plan(50, 8, seed=1, epoch=0, p_full=0.5,
                                  std=2.0, bucket=2)
  batches = list(variable_bptt.windows(stream, 4, plan, start=1, rows=(2, 4)))
  assert len(batches) == len(plan) - 1 >= 4
  table = stream.reshape(4, 50)
  for window, batch in zip(plan[1:], batches):
    lo, n = window
    real = min(n, 49 - lo)  # the last window is cut at the row's end
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == (2, n)
    np.testing.assert_array_equal(batch.inputs[:, :real], table[2:4, lo:lo + real])
    np.testing.assert_array_equal(batch.targets[:, :real],
                                  table[2:4, lo + 1:lo + real + 1])
    np.testing.assert_array_equal(batch.mask, np.arange(n) < real + np.zeros((2, 1)))


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
    config_checks.validate(c)


PTB = dict(row_len=929_589 // 20, seq_len=70)  # PTB's train split at B=20


def _covered(plan, row_len):
  """Input positions each window reads, in order."""
  return np.concatenate([np.arange(lo, min(lo + n, row_len - 1))
                         for lo, n in plan])


@pytest.mark.parametrize('row_len, seq_len, std, bucket', [
    (PTB['row_len'], 70, 5.0, 5), (50, 8, 2.0, 2), (7, 12, 2.0, 2)])
def test_epoch_plan_covers_every_row_position_exactly_once(row_len, seq_len,
                                                           std, bucket):
  counts = set()
  for epoch in range(5):
    plan = variable_bptt.epoch_plan(row_len, seq_len, seed=141, epoch=epoch,
                                    p_full=0.95, std=std, bucket=bucket)
    np.testing.assert_array_equal(_covered(plan, row_len), np.arange(row_len - 1))
    assert all(lo < row_len - 1 for lo, _ in plan)  # no empty window
    counts.add(len(plan))
  if row_len == PTB['row_len']:
    # ~68.25 tokens per window: about 681 steps, not the (row_len - 1) // 70
    # = 663 of fixed windows (B=80: ~170, not 165)
    assert counts <= set(range(670, 695)) and len(counts) > 1


def test_variable_epochs_map_global_steps_to_epoch_and_start():
  layout = variable_bptt.VariableEpochs(500, 12, seed=3, p_full=0.95, std=2.0,
                                        bucket=2)
  step = 0
  for epoch in range(4):
    n = layout.steps_in_epoch(epoch)
    assert n == len(layout.plan(epoch)) and layout.first_step(epoch) == step
    for start in (0, 1, n - 1):
      assert layout.locate(step + start) == (epoch, start)
    step += n
  assert len({layout.steps_in_epoch(e) for e in range(8)}) > 1
  fresh = variable_bptt.VariableEpochs(500, 12, seed=3, p_full=0.95, std=2.0,
                                       bucket=2)
  assert fresh.locate(step) == (4, 0)  # straight to a late step (resume)
  fixed = variable_bptt.FixedEpochs(7)
  assert fixed.locate(23) == (3, 2) and fixed.first_step(3) == 21


def _variable_config(num_epochs=2):
  config = tiny_config(num_steps=0)
  config.data.synthetic.tokens = (1000, 400, 400)  # rows of 250: ~21 steps
  config.train.num_epochs = num_epochs
  config.train.seq_len = 12
  config.train.variable_bptt = True
  config.train.bptt_std, config.train.bptt_bucket = 2.0, 2
  config.train.optimizer, config.train.learning_rate = 'sgd', 0.5
  config.train.eval_every_steps = 0  # once per epoch, as AWD
  config.train.checkpoint_every_steps = 5
  return config


def test_loop_trains_every_token_once_per_epoch_and_resumes_exactly(
    tmp_path, monkeypatch):
  config = _variable_config()
  seen = []
  real = trainer.train_step

  def spy(state, batch, carry, **kwargs):
    seen.append((np.asarray(batch.inputs), np.asarray(batch.mask)))
    return real(state, batch, carry, **kwargs)

  monkeypatch.setattr(trainer, 'train_step', spy)
  reference = trainer.train_and_evaluate(config, str(tmp_path / 'unbroken'))
  monkeypatch.setattr(trainer, 'train_step', real)
  corpus = data.load_corpus(config.data)
  layout = data.EpochPlan(config, corpus)
  row_len = len(corpus.train) // 4
  table = np.asarray(corpus.train)[:4 * row_len].reshape(4, row_len)
  assert len(seen) == reference['steps'] == layout.first_step(2)
  assert reference['epochs'] == 2.0
  for epoch in range(2):
    first = layout.first_step(epoch)
    rows = [[] for _ in range(4)]
    for inputs, mask in seen[first:first + layout.steps_in_epoch(epoch)]:
      for r in range(4):
        rows[r].append(inputs[r][mask[r] > 0])
    for r in range(4):  # each input position of each row, once, in order
      np.testing.assert_array_equal(np.concatenate(rows[r]),
                                    table[r, :row_len - 1])

  # Interrupted mid-epoch 2 (after a checkpoint that is not at an epoch
  # start), then resumed: the same final parameters, bit for bit.
  crash_at = layout.first_step(1) + 3
  while layout.locate(crash_at // 5 * 5)[1] == 0 or crash_at % 5 == 0:
    crash_at += 1
  steps_taken = []

  def crashing(state, batch, carry, **kwargs):
    if len(steps_taken) == crash_at:
      raise KeyboardInterrupt('killed')
    steps_taken.append(1)
    return real(state, batch, carry, **kwargs)

  workdir = str(tmp_path / 'resumed')
  monkeypatch.setattr(trainer, 'train_step', crashing)
  with pytest.raises(KeyboardInterrupt):
    trainer.train_and_evaluate(config, workdir)
  saved = max(int(p.name) for p in (tmp_path / 'resumed' / 'checkpoints').iterdir()
              if p.name.isdigit())
  assert saved < crash_at and layout.locate(saved)[0] == 1
  assert layout.locate(saved)[1] > 0  # resumes mid-epoch
  monkeypatch.setattr(trainer, 'train_step', real)
  resumed = trainer.train_and_evaluate(config, workdir)
  assert resumed['steps'] == reference['steps']
  assert resumed['valid_loss'] == reference['valid_loss']
  _, want, _ = inference.load_trained(config, str(tmp_path / 'unbroken'), 'latest')
  _, got, _ = inference.load_trained(config, workdir, 'latest')
  jax.tree.map(np.testing.assert_array_equal, got.params, want.params)
