"""AWD-LSTM's fine-tuning stage: where it starts, when it stops, what it
reports, and that it resumes."""

import time

import jax
import numpy as np
import pytest

from rnnlm_jax import config_checks, configs
from rnnlm_jax.training import finetune, inference, steps, trainer

from test_train_loop import tiny_config

CRASH = 'crash'
# Validation losses in call order. Main stage (nonmono 1, a check every 2
# steps): steps 2..12 -> 3.0, 2.0, 2.5, 2.8 (worse than min(3.0, 2.0): the
# average starts after step 8), 1.0 (best: step 10, the mean of the params
# after steps 9 and 10), 1.2. Then the stage's starting point: 1.5. Then the
# stage's checks at its steps 2..8: 1.4, 1.3 (its best), 1.35, 1.6 (worse than
# min(1.4, 1.3): the trigger, so the stage stops at step 8 of 20).
MAIN = [3.0, 2.0, 2.5, 2.8, 1.0, 1.2]
STAGE = [1.5, 1.4, 1.3, 1.35, 1.6]
REAL_VALIDATE = trainer.score_validation


def _config():
  config = tiny_config(num_steps=12)
  config.train.optimizer, config.train.learning_rate = 'ntasgd', 0.5
  config.train.eval_every_steps = 2
  config.train.ntasgd_nonmono = 1
  config.train.finetune_steps = 20
  return config


def _script(monkeypatch, losses):
  """Replaces the training-time validation loss by `losses`, in order; a
  CRASH entry raises once (a crash in the middle of the stage)."""
  scripted = iter(losses)

  def fake_validate(run):
    loss = next(scripted)
    if loss == CRASH:
      raise RuntimeError('simulated crash')
    return dict(REAL_VALIDATE(run), loss=loss)

  monkeypatch.setattr(trainer, 'score_validation', fake_validate)


def test_stage_starts_from_the_best_average_and_stops_at_the_trigger(
    tmp_path, monkeypatch):
  config = _config()
  _script(monkeypatch, MAIN + STAGE)
  started = {}
  real_start = trainer._start_finetuning  # pylint: disable=protected-access

  def spy_start(stage, params):
    started['params'] = jax.device_get(params)
    stage = real_start(stage, params)
    started['opt_state'] = jax.device_get(stage.state.opt_state)
    return stage

  monkeypatch.setattr(trainer, '_start_finetuning', spy_start)
  results = trainer.train_and_evaluate(config, str(tmp_path))

  # Started from the main run's best checkpoint's average (step 10: 2 updates
  # averaged), with a fresh ASGD state that averages from its first update.
  no_finetune = config.copy_and_resolve_references()
  no_finetune.train.finetune_steps = 0
  main = trainer.open_stage(no_finetune, str(tmp_path))
  best = main.checkpointer.restore(
      steps.checkpointable(main.state), main.carry, which='best')
  main.checkpointer.close()
  assert best.step == 10 and int(best.state['opt_state'].count) == 2
  jax.tree.map(np.testing.assert_array_equal, started['params'],
               jax.device_get(best.state['opt_state'].average))
  assert bool(started['opt_state'].averaging)
  assert int(started['opt_state'].count) == 0

  # Stopped by NT-ASGD's rule at step 8 of 20; its best check was step 4.
  assert results['steps'] == 12
  assert results['finetune_steps'] == 8 and results['finetune_stopped']
  assert results['finetune_best_step'] == 4
  stage = trainer.open_stage(finetune.stage_config(config),
                             finetune.workdir_of(str(tmp_path)), finetuning=True)
  assert stage.book.ntasgd_history == STAGE[1:]
  assert int(stage.state.opt_state.count) == 8  # averaged every stage step
  stage.checkpointer.close()

  # valid_* are the fine-tuned model's (what eval and generate load too),
  # before_finetune_* the main run's best.
  tuned = inference.evaluate_checkpoint(config, str(tmp_path), 'valid')
  before = inference.evaluate_checkpoint(no_finetune, str(tmp_path), 'valid')
  assert results['valid_loss'] == pytest.approx(tuned['loss'], rel=1e-6)
  assert results['before_finetune_valid_loss'] == pytest.approx(
      before['loss'], rel=1e-6)
  assert results['valid_loss'] != results['before_finetune_valid_loss']
  assert 'before_finetune_test_ppl' in results and 'test_ppl' in results

  # Finished: running the command again changes nothing.
  monkeypatch.setattr(trainer, 'score_validation', None)  # would fail if called
  assert trainer.train_and_evaluate(config, str(tmp_path)) == results


def test_stage_resumes_after_a_crash_to_the_same_result(tmp_path, monkeypatch):
  config = _config()
  _script(monkeypatch, MAIN + STAGE)
  straight = trainer.train_and_evaluate(config, str(tmp_path / 'straight'))

  crashed = str(tmp_path / 'crashed')
  # Crash at the stage's second check (its step 4; step 2 was checkpointed).
  _script(monkeypatch, MAIN + STAGE[:2] + [CRASH])
  start = time.perf_counter()
  with pytest.raises(RuntimeError, match='simulated crash'):
    trainer.train_and_evaluate(config, crashed)
  crashed_seconds = time.perf_counter() - start
  # The rerun neither retrains nor re-scores the main run (its scores were
  # kept), and the stage resumes from its step 2.
  _script(monkeypatch, STAGE[2:])
  scored = []
  real_final_results = trainer.final_results

  def spy_final_results(run, writer, state=None):
    scored.append(run.workdir)
    return real_final_results(run, writer, state)

  monkeypatch.setattr(trainer, 'final_results', spy_final_results)
  resumed = trainer.train_and_evaluate(config, crashed)
  assert scored == [finetune.workdir_of(crashed)]
  assert resumed['finetune_steps'] == 8
  # Its clock holds the crashed invocation's time, the main run's included.
  assert resumed['train_seconds'] > (resumed['train_seconds_this_invocation']
                                     + 0.5 * crashed_seconds)
  for key in ('valid_loss', 'test_loss', 'before_finetune_valid_loss',
              'before_finetune_test_loss', 'finetune_best_step'):
    assert resumed[key] == straight[key], key


def test_fine_tuning_is_switched_on_for_a_finished_run(tmp_path, monkeypatch):
  config = _config()
  config.train.finetune_steps = 0
  _script(monkeypatch, MAIN)
  first = trainer.train_and_evaluate(config, str(tmp_path))
  assert 'finetune_steps' not in first
  config.train.finetune_steps = 20
  _script(monkeypatch, STAGE)
  second = trainer.train_and_evaluate(config, str(tmp_path))
  assert second['finetune_steps'] == 8
  assert second['before_finetune_valid_loss'] == first['valid_loss']


def test_fine_tuning_needs_ntasgd():
  c = configs.base_config()
  c.train.finetune_epochs = 3
  with pytest.raises(ValueError, match="train.finetune_epochs=3 .*ntasgd"):
    config_checks.validate(c)
  c.train.optimizer = 'ntasgd'
  config_checks.validate(c)
  c.train.finetune_steps = -1
  with pytest.raises(ValueError, match='train.finetune_steps'):
    config_checks.validate(c)

