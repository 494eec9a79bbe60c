"""The training loop: TBPTT over epochs, evaluation, checkpoints, resume.

`train_and_evaluate(config, workdir)` is the whole job. Running it again on the
same workdir resumes from the latest checkpoint: step, optimizer, dropout key,
data position (a function of the step: windows come in a fixed order) and the
hidden state carried into the next window all come back.
"""

import dataclasses
from typing import Any, Iterator

import jax
import ml_collections
import numpy as np
from absl import logging

from rnnlm_jax import checkpoint, data, metrics, models
from rnnlm_jax.train import evaluate as evaluate_lib
from rnnlm_jax.train import ntasgd, optim, parallel, preemption, progress
from rnnlm_jax.train import state as state_lib, variable_bptt, workdir as workdir_lib
from rnnlm_jax.train.steps import train_step


@dataclasses.dataclass
class Run:
  """Everything one training run holds; `meta` is saved with each checkpoint."""
  config: ml_collections.ConfigDict
  workdir: str
  corpus: data.Corpus
  model: Any
  mesh: jax.sharding.Mesh
  state: state_lib.TrainState
  carry: Any
  schedule: Any
  steps_per_epoch: int  # variable BPTT: epoch 0's (schedule, reports)
  total_steps: int
  checkpointer: checkpoint.Checkpointer
  # global step <-> (epoch, batch in it): variable_bptt.FixedEpochs, or
  # VariableEpochs, whose epochs run until the rows are used up
  epochs: Any = None
  finetuning: bool = False  # the fine-tuning stage (rnnlm_jax.train.finetune)
  step: int = 0  # host copy of state.step, so the loop never waits to read it
  window: progress.Window = dataclasses.field(default_factory=progress.Window)
  meta: dict = dataclasses.field(default_factory=lambda: {
      'best_valid_loss': None, 'best_step': None, 'evals_without_gain': 0,
      'stopped_early': False})

  @property
  def finished(self) -> bool:
    """All steps done, or stopped early (early stopping, fine-tuning's rule)."""
    return self.step >= self.total_steps or self.meta['stopped_early']

  @property
  def batch_sharding(self):
    return parallel.batch_sharded(self.mesh, self.config.train.batch_size)


def steps_per_epoch(config: ml_collections.ConfigDict, corpus: data.Corpus) -> int:
  t = config.train
  if config.data.mode == 'sentence':
    return data.num_sentence_batches(corpus.train, corpus.boundary_id,
                                     t.batch_size, t.seq_len)
  return data.num_bptt_windows(len(corpus.train), t.batch_size, t.seq_len)


def epoch_layout(config: ml_collections.ConfigDict, corpus: data.Corpus):
  """How many steps each epoch has and where a global step falls."""
  t = config.train
  if t.variable_bptt:
    return variable_bptt.VariableEpochs(
        len(corpus.train) // t.batch_size, t.seq_len, seed=config.seed,
        p_full=t.bptt_p_full, std=t.bptt_std, bucket=t.bptt_bucket)
  return variable_bptt.FixedEpochs(steps_per_epoch(config, corpus))


def check_split_sizes(config: ml_collections.ConfigDict, corpus: data.Corpus) -> None:
  """Fails at start-up, naming the split, if one cannot fill one batch window."""
  t, e = config.train, config.eval
  eval_len = e.seq_len or t.seq_len
  needs = [('valid', e.batch_size, eval_len, 'eval.batch_size'),
           ('test', e.test_batch_size, eval_len, 'eval.test_batch_size')]
  if config.data.mode == 'stream':
    needs.insert(0, ('train', t.batch_size, t.seq_len, 'train.batch_size'))
  for split, batch_size, seq_len, key in needs:
    tokens = len(corpus.split(split))
    if data.num_bptt_windows(tokens, batch_size, seq_len, drop_last=split == 'train') == 0:
      raise data.DataError(
          f'the {split} split has {tokens:,} tokens, too few for {key}={batch_size} '
          f'x seq_len={seq_len}; use a smaller {key} or seq_len, or more data')


def build_run(config: ml_collections.ConfigDict, workdir: str,
              fresh: bool = False, finetuning: bool = False) -> Run:
  """Loads data, builds model/optimizer/state, restores the latest checkpoint.

  `finetuning`: NT-ASGD's trigger ends the run instead of starting averaging.
  """
  mesh = parallel.make_mesh()
  parallel.check_divisible(config.train.batch_size, mesh, 'train.batch_size')
  workdir_lib.prepare(config, workdir, fresh)
  corpus = workdir_lib.load_corpus(config, workdir)
  check_split_sizes(config, corpus)
  model = models.make_model(config.model, len(corpus.vocab))
  epochs = epoch_layout(config, corpus)
  per_epoch = epochs.steps_in_epoch(0)
  total = config.train.num_steps or epochs.first_step(config.train.num_epochs)
  tx, schedule = optim.make_optimizer(config.train, per_epoch, total)
  state = state_lib.create_train_state(
      model, tx, config.seed, config.train.batch_size, config.train.seq_len,
      parallel.replicated(mesh))
  carry = evaluate_lib.initial_carry(
      model, config.train.batch_size,
      parallel.batch_sharded(mesh, config.train.batch_size))
  run = Run(config, workdir, corpus, model, mesh, state, carry, schedule,
            per_epoch, total,
            checkpoint.Checkpointer(workdir, config.train.keep_checkpoints),
            epochs=epochs, finetuning=finetuning)
  if config.train.optimizer == 'ntasgd':
    run.meta['ntasgd_history'] = []  # valid losses so far (saved, restored)
  _restore_latest(run)
  return run


def _restore_latest(run: Run) -> None:
  restored = run.checkpointer.restore(state_lib.checkpointable(run.state), run.carry)
  on_disk = run.checkpointer.steps()
  if restored is None and on_disk:
    # Starting over would later rotate those checkpoints out: refuse.
    raise checkpoint.CheckpointError(
        f'none of the checkpoints in {run.workdir} (steps '
        f'{on_disk}) can be read into this model: damaged, or '
        'written by a different version of the code (see the warnings above); '
        'pass --fresh to move the run aside and start anew')
  if restored is None:
    logging.info('starting a new run in %s', run.workdir)
    return
  run.state = state_lib.from_checkpointable(run.state, restored.state)
  run.step = restored.step
  run.carry = restored.carry
  run.window.restore(restored.meta.get('log_window'))
  run.meta.update({k: restored.meta[k] for k in run.meta if k in restored.meta})
  logging.info('resumed from step %d (epoch %d) in %s', run.step,
               run.epochs.locate(run.step)[0], run.workdir)


def save(run: Run, which: str = 'latest') -> None:
  meta = dict(run.meta, step=run.step, epoch=run.epochs.locate(run.step)[0],
              corpus_fingerprint=run.corpus.fingerprint,
              log_window=run.window.snapshot())
  run.checkpointer.save(run.step, state_lib.checkpointable(run.state), run.carry,
                        meta, which)


def epochs_done(run: Run) -> float:
  """Epochs trained so far, fractional (epoch + its share done)."""
  epoch, start = run.epochs.locate(run.step)
  return epoch + start / run.epochs.steps_in_epoch(epoch)


def epoch_batches(run: Run, epoch: int, start: int) -> Iterator[data.Batch]:
  """This process's rows of the epoch's batches, from batch `start` on."""
  t = run.config.train
  rows = parallel.process_rows(t.batch_size, run.batch_sharding)
  if run.config.data.mode == 'sentence':
    return data.sentence_batches(run.corpus.train, run.corpus.boundary_id,
                                 t.batch_size, t.seq_len,
                                 shuffle_seed=run.config.seed + epoch,
                                 start=start, rows=rows)
  if t.variable_bptt:
    return variable_bptt.windows(run.corpus.train, t.batch_size,
                                 run.epochs.plan(epoch), start=start, rows=rows)
  return data.bptt_windows(run.corpus.train, t.batch_size, t.seq_len,
                           start=start, rows=rows)


def validate(run: Run) -> dict[str, float]:
  e = run.config.eval
  return evaluate_lib.evaluate(  # NT-ASGD: the averaged params once averaging
      ntasgd.for_eval(run.state), run.model, run.corpus.valid,
      batch_size=e.batch_size, seq_len=e.seq_len or run.config.train.seq_len,
      mesh=run.mesh)


def _after_eval(run: Run, result: dict[str, float]) -> None:
  """Best-checkpoint bookkeeping and early stopping."""
  best = run.meta['best_valid_loss']
  if best is None or result['loss'] < best:
    run.meta.update(best_valid_loss=result['loss'], best_step=run.step,
                    evals_without_gain=0)
    save(run, 'best')
  else:
    run.meta['evals_without_gain'] += 1
    patience = run.config.train.early_stopping_patience
    if patience and run.meta['evals_without_gain'] >= patience:
      run.meta['stopped_early'] = True
      logging.info('early stopping: no validation gain in %d evaluations', patience)


class NonFiniteError(RuntimeError):
  """Too many consecutive steps with a NaN/inf loss or gradient norm."""


def _check_finite(step_metrics: dict | None, limit: int, step: int) -> None:
  """Reads the *previous* step's divergence counter: by the time the next
  step is queued it is done, so this never stalls the device pipeline."""
  if step_metrics is not None and int(step_metrics['nonfinite_run']) >= limit:
    raise NonFiniteError(
        f'loss or gradient norm was NaN/inf for {limit} consecutive steps '
        f'(by step {step}); those updates were skipped, so every checkpoint holds '
        'finite parameters; lower train.learning_rate or set train.clip_norm')


def train(run: Run, writer: metrics.MetricWriter) -> None:
  """Trains from `run.step` to `run.total_steps` (or early stop).

  Raises preemption.Preempted after saving if SIGTERM arrives, and
  NonFiniteError if the run diverges.
  """
  t = run.config.train
  bar = progress.Progress(run.total_steps, run.step, enabled=t.progress_bar)
  window = run.window
  guard = preemption.PreemptionGuard()
  previous = None
  try:
    while not run.finished:
      epoch, start = run.epochs.locate(run.step)
      if start == 0:
        run.carry = _zero_carry(run)
      batches = parallel.prefetch_to_device(epoch_batches(run, epoch, start),
                                            run.batch_sharding, t.batch_size)
      for batch in batches:
        step_metrics = _train_one(run, batch)
        _check_finite(previous, t.max_nonfinite_steps, run.step - 1)
        previous = step_metrics
        window.add(step_metrics)
        bar.update(run.step, window.tokens_per_second())
        _maybe_log(run, writer, bar, window, epoch)
        evaluated = _maybe_evaluate(run, writer, bar)
        every = t.checkpoint_every_steps
        if (evaluated and not every) or (every and run.step % every == 0):
          save(run)
        if guard.requested(run.step):
          _save_final(run)
          raise preemption.Preempted(run.step)
        if run.finished:
          break
    _check_finite(previous, t.max_nonfinite_steps, run.step)
  finally:
    bar.close()
    guard.close()
  _save_final(run)


def _zero_carry(run: Run):
  return evaluate_lib.initial_carry(run.model, run.config.train.batch_size,
                                    run.batch_sharding)


def _train_one(run: Run, batch: data.Batch) -> dict:
  """One step on a batch already on the devices (global arrays)."""
  t = run.config.train
  extra = {}
  if t.variable_bptt:  # AWD: lr * window length / T (traced: no recompile)
    extra['lr_scale'] = np.float32(
        variable_bptt.lr_scale(batch.inputs.shape[1], t.seq_len))
  run.state, run.carry, step_metrics = train_step(
      run.state, batch, run.carry, loss_normalization=t.loss_normalization,
      ar_alpha=t.ar_alpha, tar_beta=t.tar_beta, **extra)
  run.step += 1  # host copy: reading state.step would wait for the device
  if run.config.data.mode == 'sentence':
    run.carry = _zero_carry(run)  # sentences are independent
  return step_metrics


def _maybe_log(run, writer, bar, window, epoch: int) -> None:
  step = run.step
  if step % run.config.train.log_every_steps and step != run.total_steps:
    return
  scalars = window.flush()
  scalars['learning_rate'] = float(run.schedule(step - 1))
  # Per device too, so scaling efficiency reads off directly across runs.
  scalars['tokens_per_s_per_device'] = scalars['tokens_per_s'] / jax.device_count()
  writer.write(step, 'train', scalars)
  bar.log(f'step {step}/{run.total_steps} epoch {epoch + 1}: loss '
          f'{scalars["loss"]:.4f} ppl {scalars["ppl"]:.2f} '
          f'{scalars["tokens_per_s"]:,.0f} tok/s '
          f'({scalars["tokens_per_s_per_device"]:,.0f}/device)'
          + (f' skipped {scalars["skipped_steps"]:.0f}' if scalars['skipped_steps'] else ''))


def _save_final(run: Run) -> None:
  steps = run.checkpointer.steps()
  if not steps or steps[-1] != run.step:
    save(run)
  run.checkpointer.wait()


def _maybe_evaluate(run, writer, bar) -> bool:
  every = run.config.train.eval_every_steps
  step = run.step
  end_of_epoch = run.epochs.locate(step)[1] == 0
  due = (every and step % every == 0) or (not every and end_of_epoch)
  if not (due or step == run.total_steps):
    return False
  result = validate(run)
  writer.write(step, 'valid', result)
  bar.log(f'step {step}: valid loss {result["loss"]:.4f} ppl {result["ppl"]:.2f} '
          f'bits/token {result["bits"]:.4f}')
  _after_eval(run, result)
  if run.config.train.optimizer == 'ntasgd':
    _ntasgd_check(run, result['loss'], bar)
  return True


def _ntasgd_check(run: Run, loss: float, bar) -> None:
  """After the best-checkpoint bookkeeping (as AWD): maybe start averaging,
  or, fine-tuning (already averaging), stop where the rule triggers."""
  history, nonmono = run.meta['ntasgd_history'], run.config.train.ntasgd_nonmono
  if run.finetuning and ntasgd.should_switch(history, loss, nonmono):
    run.meta['stopped_early'] = True
    bar.log(f'step {run.step}: fine-tuning done (validation stopped improving)')
  opt_state, switched = ntasgd.switch_if_triggered(
      run.state.opt_state, history, loss, nonmono)
  if switched:
    run.state = run.state.replace(opt_state=opt_state)
    bar.log(f'step {run.step}: NT-ASGD switched to averaging')
