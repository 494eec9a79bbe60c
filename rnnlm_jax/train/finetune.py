"""AWD-LSTM's fine-tuning stage: averaged SGD restarted from the best model.

After the main run, Merity et al. (2017) load the best (averaged) parameters
and run ASGD again, averaging from the very first update (t0 = 0), with a
validation check per epoch; the stage stops at the first check that NT-ASGD's
rule triggers on (the loss worse than the best of the checks older than the
last n), and its best checkpoint, the starting point included, is the final
model (PTB: valid 60.7 -> 60.0, test 58.8 -> 57.3).

The stage is a second, ordinary run in `<workdir>/finetune` (its own
config.json, checkpoints, metrics), so it resumes like any run. Its first
checkpoint, at step 0, holds the starting point, saved as both latest and
best before the first step: a restart never re-derives it.
"""

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from etils import epath

from rnnlm_jax.train import loop, parallel, workdir as workdir_lib

SUBDIR = 'finetune'
# The main stage's scores, kept so that resuming the fine-tuning stage does
# not re-score (or re-log) the finished main run.
MAIN_RESULTS = 'results_before_finetune.json'


def enabled(config: ml_collections.ConfigDict) -> bool:
  return bool(config.train.finetune_epochs or config.train.finetune_steps)


def stage_workdir(workdir: str) -> str:
  return str(epath.Path(workdir) / SUBDIR)


def stage_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The main config with the stage's length (the rest is AWD's: same lr,
  regularization and batch)."""
  stage = config.copy_and_resolve_references()
  stage.train.num_epochs = config.train.finetune_epochs
  stage.train.num_steps = config.train.finetune_steps
  return stage


def build_run(config: ml_collections.ConfigDict, workdir: str,
              start_params) -> loop.Run:
  """The stage's Run, resumed, or started from `start_params()` (the main
  run's best eval params, e.g. NT-ASGD's average) when it has no checkpoint."""
  run = loop.build_run(stage_config(config), stage_workdir(workdir),
                       finetuning=True)
  if not run.checkpointer.steps():
    _start(run, start_params())
  return run


def _start(run: loop.Run, params) -> None:
  """Fresh ASGD state on `params`, averaging from the first update."""
  init = jax.jit(run.state.tx.init, out_shardings=parallel.replicated(run.mesh))
  opt_state = init(params)
  # logical_or keeps the flag's dtype and sharding (as ntasgd's switch does).
  opt_state = opt_state._replace(
      averaging=jnp.logical_or(opt_state.averaging, True))
  run.state = run.state.replace(params=params, opt_state=opt_state)
  start = loop.validate(run)  # what the stage has to beat (AWD's stored_loss)
  logging.info('fine-tuning from valid loss %.4f (ppl %.2f) in %s',
               start['loss'], start['ppl'], run.workdir)
  run.meta.update(best_valid_loss=start['loss'], best_step=0)
  loop.save(run, 'best')
  loop.save(run)
  run.checkpointer.wait()


def merge_results(main: dict, stage: dict) -> dict:
  """The run's results: the fine-tuned valid/test scores, the main stage's as
  before_finetune_*, and the stage's length."""
  scores = ('valid_', 'test_')
  merged = {k: v for k, v in main.items() if not k.startswith(scores)}
  merged.update({f'before_finetune_{k}': v for k, v in main.items()
                 if k.startswith(scores)})
  merged.update({k: v for k, v in stage.items() if k.startswith(scores)})
  merged.update(finetune_workdir=stage['workdir'],
                finetune_steps=stage['steps'], finetune_epochs=stage['epochs'],
                finetune_best_step=stage['best_step'],
                finetune_stopped=stage['stopped_early'])
  return merged


def model_workdir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Where the run's final model lives: the stage's workdir once it started."""
  stage = stage_workdir(workdir)
  if enabled(config) and workdir_lib.has_started(stage):
    return stage
  return workdir
