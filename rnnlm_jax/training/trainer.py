"""The training driver: `train_and_evaluate(config, workdir)` is the whole job.

Running it again on the same workdir resumes from the latest checkpoint: step,
optimizer, dropout key, data position (a function of the step: batches come
in a fixed order), the hidden state carried into the next window and the
validation bookkeeping all come back. A finished run prints its results and
changes nothing.

With AWD-LSTM's fine-tuning stage on (train.finetune_epochs/steps), a second,
ordinary stage follows in `<workdir>/finetune`: averaged SGD restarted from
the best (averaged) params, averaging from the first update (AWD: t0 = 0),
stopped at the first validation check NT-ASGD's rule triggers on; its best
checkpoint, the starting point included, is the final model
(rnnlm_jax/training/finetune.py holds what differs).

With train.init_from=<workdir>, a fresh run starts from that run's params and
vocabulary (rnnlm_jax/training/init_from.py).
"""

import dataclasses
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from rnnlm_jax import checkpoint, metrics, models
from rnnlm_jax.training import counting, optim, parallel, progress, scoring, steps
from rnnlm_jax.training import bookkeeping, finetune, init_from, tasks
from rnnlm_jax.training.bookkeeping import Bookkeeping
from rnnlm_jax.training import run_files
from rnnlm_jax.training.steps import train_step

@dataclasses.dataclass
class Stage:
  """One opened training run (the main run or the fine-tuning stage): what
  stays fixed while it trains, and the point it (re)starts from."""
  config: ml_collections.ConfigDict
  workdir: str
  task: tasks.Task
  corpus: Any
  plan: Any  # data.EpochPlan
  model: Any
  mesh: jax.sharding.Mesh
  schedule: Any
  total_steps: int
  checkpointer: checkpoint.Checkpointer
  finetuning: bool
  state: steps.TrainState
  carry: Any
  step: int = 0  # host copy of state.step, so the loop never waits to read it
  book: Bookkeeping = dataclasses.field(default_factory=Bookkeeping)
  log_window: progress.LogWindow = dataclasses.field(
      default_factory=progress.LogWindow)
  # The clock of the whole run: seconds spent in earlier invocations (up to
  # the checkpoint resumed from) counted in, so `train_seconds` survives
  # resumes; a fine-tuning stage's clock includes its main run's. None:
  # resumed from a checkpoint written without the clock.
  clock_start: float | None = dataclasses.field(default_factory=time.perf_counter)

  @property
  def train_seconds(self) -> float | None:
    if self.clock_start is None:
      return None
    return time.perf_counter() - self.clock_start

  @property
  def finished(self) -> bool:
    return self.step >= self.total_steps or self.book.stopped_early

  @property
  def batch_sharding(self):
    return parallel.batch_sharded(self.mesh, self.config.train.batch_size)

  def epoch_of(self, step: int) -> int:
    return self.plan.locate(step)[0]


class NonFiniteError(RuntimeError):
  """Too many consecutive steps with a NaN/inf loss or gradient norm."""

  def __init__(self, message: str, step: int):
    super().__init__(message)
    self.step = step


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       fresh: bool = False) -> dict[str, Any]:
  """Trains (or resumes) the run in `workdir`, fine-tunes it if configured,
  then writes results.json and a sample; returns the results."""
  if models.MODEL_TYPES.get(config.model.type).counted:  # no gradients
    return counting.train_and_evaluate(config, workdir, fresh)
  main = open_stage(config, workdir, fresh)
  finetuning = finetune.enabled(config)
  done = run_files.read_json(workdir, 'results.json')
  # A finished run is left alone, unless fine-tuning was switched on since.
  if done is not None and main.finished and (
      not finetuning or 'finetune_workdir' in done):
    logging.info('%s already finished; results.json is unchanged', workdir)
    main.checkpointer.close()
    return done
  start_time = time.perf_counter()

  # --- the main run ----------------------------------------------------------
  main, results, tokens_now = _train_and_score(
      main, cache=finetune.MAIN_RESULTS if finetuning else None)
  final = main

  # --- the fine-tuning stage (AWD-LSTM) --------------------------------------
  if finetuning:
    final = open_stage(finetune.stage_config(config),
                       finetune.workdir_of(workdir), finetuning=True)
    if not final.checkpointer.steps():  # its clock goes on from the main run's
      final = _start_finetuning(
          dataclasses.replace(final, clock_start=main.clock_start),
          _best_eval_state(main).params)
    final, stage_results, stage_tokens = _train_and_score(final)
    results = finetune.merge_results(results, stage_results)
    tokens_now += stage_tokens

  # --- results and a sample --------------------------------------------------
  seconds = time.perf_counter() - start_time
  # Real target tokens (masks applied: padded pairs and prompts not counted).
  rate = tokens_now / max(seconds, 1e-9)
  sample = final.task.show(final.model, final.state.params, final.corpus, config)
  total_seconds = final.train_seconds
  if total_seconds is not None:
    results['train_seconds'] = total_seconds
  results.update(train_seconds_this_invocation=seconds,
                 tokens_trained_this_invocation=tokens_now,
                 tokens_per_s_this_invocation=rate,
                 tokens_per_s_per_device_this_invocation=rate / jax.device_count(),
                 sample=sample)
  run_files.write_json(workdir, 'results.json', results)
  run_files.append_text(workdir, 'samples.txt',
                          f'--- step {final.step} prompt {config.generate.prompt!r}\n'
                          f'{sample}\n')
  for stage in {id(main): main, id(final): final}.values():
    stage.checkpointer.close()
  return results


def open_stage(config: ml_collections.ConfigDict, workdir: str,
               fresh: bool = False, finetuning: bool = False) -> Stage:
  """Data, model, optimizer and the restored latest checkpoint of a run.

  `finetuning`: NT-ASGD's trigger ends the run instead of starting averaging.
  """
  # --- data ------------------------------------------------------------------
  mesh = parallel.make_mesh()
  parallel.check_divisible(config.train.batch_size, mesh, 'train.batch_size')
  run_files.prepare(config, workdir, fresh)
  if not finetuning:  # the stage starts from the main run's params
    init_from.adopt_vocabulary(config, workdir)
  task = tasks.get(config)
  corpus = task.load_data(config, workdir)
  plan = task.plan(config, corpus)
  plan.check_split_sizes()

  # --- model + optimizer -----------------------------------------------------
  model = task.make_model(config, corpus)
  per_epoch = plan.steps_per_epoch
  total = config.train.num_steps or plan.first_step(config.train.num_epochs)
  tx, schedule = optim.make_optimizer(config.train, per_epoch, total)
  t = config.train
  state = steps.create_train_state(model, tx, config.seed, t.batch_size,
                                   t.seq_len, parallel.replicated(mesh))
  carry = _zero_carry(model, config, mesh)

  # --- restore the latest checkpoint -----------------------------------------
  checkpointer = checkpoint.Checkpointer(workdir, t.keep_checkpoints)
  stage = Stage(config, workdir, task, corpus, plan, model, mesh, schedule,
                total, checkpointer, finetuning, state, carry)
  restored = checkpointer.restore(steps.checkpointable(state), carry)
  on_disk = checkpointer.steps()
  if restored is None and on_disk:
    # Starting over would later rotate those checkpoints out: refuse.
    raise checkpoint.CheckpointError(
        f'none of the checkpoints in {workdir} (steps {on_disk}) can be read '
        'into this model: damaged, or written by a different version of the '
        'code (see the warnings above); pass --fresh to move the run aside '
        'and start anew')
  if restored is None:
    logging.info('starting a new run in %s', workdir)
    if config.train.init_from and not finetuning:
      stage = dataclasses.replace(stage, state=init_from.restore_params(
          config, workdir, state, mesh))
    return stage
  stage.log_window.restore(restored.meta.get('log_window'))
  book = Bookkeeping.from_meta(restored.meta)
  logging.info('resumed from step %d (epoch %d) in %s', restored.step,
               plan.locate(restored.step)[0], workdir)
  earlier = restored.meta.get('train_seconds')
  return dataclasses.replace(
      stage, state=steps.from_checkpointable(state, restored.state),
      carry=restored.carry, step=restored.step, book=book,
      clock_start=None if earlier is None else stage.clock_start - earlier)


def fit(stage: Stage, writer: metrics.MetricWriter) -> Stage:
  """Trains `stage` from its step to its end (or early stop); returns it at
  the end, checkpointed.

  Raises progress.Preempted after saving if SIGTERM arrives, and
  NonFiniteError if the run diverges.
  """
  t = stage.config.train
  state, carry, step, book = stage.state, stage.carry, stage.step, stage.book
  bar = progress.Progress(stage.total_steps, step, enabled=t.progress_bar)
  guard = progress.PreemptionGuard()
  rows = parallel.process_rows(t.batch_size, stage.batch_sharding)
  previous = None  # the last step's metrics, read one step late (no stall)
  try:
    while not (step >= stage.total_steps or book.stopped_early):
      epoch, start = stage.plan.locate(step)
      if start == 0:
        carry = _zero_carry(stage.model, stage.config, stage.mesh)
      batches = parallel.prefetch_to_device(
          stage.plan.batches(epoch, start, rows), stage.batch_sharding,
          t.batch_size)
      for batch in batches:
        lr_scale = stage.plan.lr_scale(batch.inputs.shape[1])
        extra = {} if lr_scale is None else {'lr_scale': np.float32(lr_scale)}
        state, carry, step_metrics = train_step(
            state, batch, carry, loss_normalization=t.loss_normalization,
            ar_alpha=t.ar_alpha, tar_beta=t.tar_beta,
            label_smoothing=t.label_smoothing, **extra)
        step += 1
        if stage.plan.resets_carry:
          carry = _zero_carry(stage.model, stage.config, stage.mesh)
        _check_finite(previous, t, step - 1)
        previous = step_metrics
        stage.log_window.add(step_metrics)
        bar.update(step, stage.log_window.tokens_per_second())
        stage = dataclasses.replace(stage, state=state, carry=carry, step=step)
        _maybe_log(stage, writer, bar, epoch)
        stage, evaluated = _maybe_evaluate(stage, writer, bar)
        state, book = stage.state, stage.book  # NT-ASGD may switch averaging
        every = t.checkpoint_every_steps
        if (evaluated and not every) or (every and step % every == 0):
          save(stage)
        if guard.requested(step):
          _save_final(stage)
          raise progress.Preempted(step)
        if stage.finished:
          break
    _check_finite(previous, t, step)
  except BaseException:
    # Training stopped on an error: let a checkpoint save already under way
    # finish, so that the restart resumes from it.
    try:
      stage.checkpointer.wait()
    except Exception:  # pylint: disable=broad-except
      logging.warning('a checkpoint save in flight failed after the error')
    raise
  finally:
    bar.close()
    guard.close()
  _save_final(stage)
  return stage


def score_validation(stage: Stage) -> dict[str, float]:
  """Static validation loss of the stage's eval params (NT-ASGD: average),
  and the task's validation metrics (e.g. greedy BLEU) when on."""
  e = stage.config.eval
  params = optim.for_eval(stage.state).params
  scores = stage.task.score(params, stage.model, stage.corpus, 'valid',
                            e.batch_size, stage.config, stage.mesh)
  return dict(scores, **stage.task.validation_metrics(
      params, stage.model, stage.corpus, stage.config))


def final_results(stage: Stage, writer: metrics.MetricWriter,
                  state: steps.TrainState | None = None) -> dict[str, Any]:
  """Valid and test scores of the best checkpoint's eval `state` (read when
  not given) by eval.method (test at eval.test_batch_size), and the sizes."""
  state = _best_eval_state(stage) if state is None else state
  best = stage.checkpointer.steps('best')
  e = stage.config.eval
  results = {'workdir': stage.workdir, 'level': stage.corpus.level,
             'corpus': stage.corpus.name,
             'corpus_fingerprint': stage.corpus.fingerprint,
             'vocab_size': len(stage.corpus.vocab),
             'num_params': models.count_params(state.params),
             'steps': stage.step, 'epochs': stage.plan.epochs_done(stage.step),
             'best_step': best[-1] if best else stage.step,
             'stopped_early': stage.book.stopped_early,
             'devices': jax.device_count(), **init_from.results(stage.workdir)}
  for split, batch_size in (('valid', e.batch_size), ('test', e.test_batch_size)):
    scores = stage.task.score(state.params, stage.model, stage.corpus, split,
                              batch_size, stage.config, stage.mesh, e.method)
    writer.write(stage.step, f'final_{split}', scores)
    results.update({f'{split}_{k}': v for k, v in scores.items()})
    logging.info('%s: loss %.4f ppl %.2f bits/token %.4f (%d tokens, batch %d)',
                 split, scores['loss'], scores['ppl'], scores['bits'],
                 scores['tokens'], batch_size)
  results.update(stage.task.final_results(state.params, stage.model,
                                          stage.corpus, stage.config,
                                          stage.workdir))
  if getattr(stage.corpus, 'oracle_nll', None):
    for split in ('valid', 'test'):
      results[f'{split}_oracle_ppl'] = float(np.exp(stage.corpus.oracle_nll[split]))
  return results


def save(stage: Stage, which: str = 'latest') -> None:
  meta = dict(dataclasses.asdict(stage.book), step=stage.step,
              epoch=stage.epoch_of(stage.step),
              corpus_fingerprint=stage.corpus.fingerprint,
              log_window=stage.log_window.snapshot(),
              train_seconds=stage.train_seconds)
  stage.checkpointer.save(stage.step, steps.checkpointable(stage.state),
                          stage.carry, meta, which)


# --- the pieces of the loop --------------------------------------------------

def _zero_carry(model, config, mesh):
  batch_size = config.train.batch_size
  return scoring.initial_carry(model, batch_size,
                               parallel.batch_sharded(mesh, batch_size))


def _check_finite(step_metrics: dict | None, train_config, step: int) -> None:
  """Reads the *previous* step's divergence counter: by the time the next
  step is queued it is done, so this never stalls the device pipeline."""
  limit = train_config.max_nonfinite_steps
  if step_metrics is not None and int(step_metrics['nonfinite_run']) >= limit:
    clip = train_config.clip_norm
    remedy = (f'lower train.learning_rate (now {train_config.learning_rate:g})'
              + (f' or train.clip_norm (now {clip:g})' if clip
                 else ' or set train.clip_norm'))
    raise NonFiniteError(
        f'loss or gradient norm was NaN/inf for {limit} consecutive steps '
        f'(by step {step}); those updates were skipped, so every checkpoint holds '
        f'finite parameters; {remedy}', step)


def _maybe_log(stage: Stage, writer, bar, epoch: int) -> None:
  step = stage.step
  if step % stage.config.train.log_every_steps and step != stage.total_steps:
    return
  scalars = stage.log_window.flush()
  scalars['learning_rate'] = float(stage.schedule(step - 1))
  # Per device too, so scaling efficiency reads off directly across runs.
  scalars['tokens_per_s_per_device'] = scalars['tokens_per_s'] / jax.device_count()
  writer.write(step, 'train', scalars)
  bar.log(f'step {step}/{stage.total_steps} epoch {epoch + 1}: loss '
          f'{scalars["loss"]:.4f} ppl {scalars["ppl"]:.2f} '
          f'{scalars["tokens_per_s"]:,.0f} tok/s '
          f'({scalars["tokens_per_s_per_device"]:,.0f}/device)'
          + (f' skipped {scalars["skipped_steps"]:.0f}' if scalars['skipped_steps'] else ''))


def _maybe_evaluate(stage: Stage, writer, bar) -> tuple[Stage, bool]:
  """At each evaluation: validation, the best checkpoint, early stopping and
  NT-ASGD's switch (after the best-checkpoint bookkeeping, as AWD)."""
  every, step = stage.config.train.eval_every_steps, stage.step
  end_of_epoch = stage.plan.locate(step)[1] == 0
  due = (every and step % every == 0) or (not every and end_of_epoch)
  if not (due or step == stage.total_steps):
    return stage, False
  result = score_validation(stage)
  writer.write(step, 'valid', result)
  extra = ''.join(f' {k} {v:.2f}' for k, v in result.items()
                  if k in stage.task.higher_better)
  bar.log(f'step {step}: valid loss {result["loss"]:.4f} ppl {result["ppl"]:.2f} '
          f'bits/token {result["bits"]:.4f}{extra}')
  t = stage.config.train
  book, best = bookkeeping.record(stage.book, result, step, t.best_metric,
                                  t.early_stopping_patience)
  stage = dataclasses.replace(stage, book=book)
  if best:
    save(stage, 'best')
  if optim.OPTIMIZERS.get(stage.config.train.optimizer).averaged:
    stage, book = _ntasgd_check(stage, book, result['loss'], bar)
  return dataclasses.replace(stage, book=book), True


def _ntasgd_check(stage: Stage, book: Bookkeeping, loss: float, bar):
  """Maybe start averaging, or, fine-tuning (already averaging), stop where
  the rule triggers."""
  history = list(book.ntasgd_history)
  nonmono = stage.config.train.ntasgd_nonmono
  if stage.finetuning and optim.should_switch(history, loss, nonmono):
    book = dataclasses.replace(book, stopped_early=True)
    bar.log(f'step {stage.step}: fine-tuning done (validation stopped improving)')
  opt_state, switched = optim.switch_if_triggered(
      stage.state.opt_state, history, loss, nonmono)
  if switched:
    stage = dataclasses.replace(stage, state=stage.state.replace(opt_state=opt_state))
    bar.log(f'step {stage.step}: NT-ASGD switched to averaging')
  return stage, dataclasses.replace(book, ntasgd_history=history)


def _save_final(stage: Stage) -> None:
  on_disk = stage.checkpointer.steps()
  if not on_disk or on_disk[-1] != stage.step:
    save(stage)
  stage.checkpointer.wait()


def _train_and_score(stage: Stage, cache: str | None = None):
  """Trains `stage` to its end and scores its best checkpoint: (stage at its
  end, results, tokens trained now). With `cache`, the scores are kept in that
  file of the stage's workdir and a finished stage is not scored again."""
  if cache and stage.finished:
    cached = run_files.read_json(stage.workdir, cache)
    if cached is not None:
      return stage, cached, 0.0
  writer = metrics.MetricWriter(stage.workdir, resume_step=stage.step)
  try:
    stage = fit(stage, writer)
    # From here on the stage holds the final model: the best checkpoint's
    # eval params (NT-ASGD: the average), which are scored and sampled.
    stage = dataclasses.replace(stage, state=_best_eval_state(stage))
    results = final_results(stage, writer, stage.state)
  finally:
    writer.close()
  if cache:
    run_files.write_json(stage.workdir, cache, results)
  return stage, results, stage.log_window.flushed_tokens


def _best_eval_state(stage: Stage) -> steps.TrainState:
  """The eval state (NT-ASGD: averaged params) of the best checkpoint, or of
  the current state when there is none."""
  best = stage.checkpointer.restore(steps.checkpointable(stage.state),
                                    stage.carry, which='best')
  state = stage.state if best is None else steps.from_checkpointable(
      stage.state, best.state)
  return optim.for_eval(state)


# --- the fine-tuning stage ---------------------------------------------------

def _start_finetuning(stage: Stage, params) -> Stage:
  """Fresh ASGD state on `params`, averaging from the first update; the
  start is checkpointed as latest and best before the first step, so a
  restart never re-derives it."""
  stage = dataclasses.replace(
      stage, state=finetune.averaging_state(stage.state, params, stage.mesh))
  start = score_validation(stage)  # what the stage has to beat (AWD's stored_loss)
  logging.info('fine-tuning from valid loss %.4f (ppl %.2f) in %s',
               start['loss'], start['ppl'], stage.workdir)
  stage = dataclasses.replace(stage, book=dataclasses.replace(
      stage.book, best_valid_loss=start['loss'],
      best_value=start[stage.config.train.best_metric], best_step=0))
  save(stage, 'best')
  save(stage)
  stage.checkpointer.wait()
  return stage
