"""AWD-LSTM's fine-tuning stage: where it lives, its config, its fresh
averaged-SGD state and how its results merge with the main run's.

The stage is an ordinary training run in `<workdir>/finetune` (the trainer
opens, trains and scores it like the main run); these are the pieces that
differ.
"""

import jax
import jax.numpy as jnp
import ml_collections
from etils import epath

from rnnlm_jax.training import parallel, run_files, steps

SUBDIR = 'finetune'
# The main stage's scores, kept so that resuming the fine-tuning stage does
# not re-score (or re-log) the finished main run.
MAIN_RESULTS = 'results_before_finetune.json'


def enabled(config: ml_collections.ConfigDict) -> bool:
  return bool(config.train.finetune_epochs or config.train.finetune_steps)


def workdir_of(workdir: str) -> str:
  return str(epath.Path(workdir) / SUBDIR)


def model_workdir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Where the run's final model lives: the fine-tuning stage's workdir once
  it has started."""
  stage = workdir_of(workdir)
  return stage if enabled(config) and run_files.has_started(stage) else workdir


def stage_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The main config with the stage's length (the rest is AWD's: same lr,
  regularization and batch)."""
  stage = config.copy_and_resolve_references()
  stage.train.num_epochs = config.train.finetune_epochs
  stage.train.num_steps = config.train.finetune_steps
  return stage


def averaging_state(state: steps.TrainState, params,
                    mesh: jax.sharding.Mesh) -> steps.TrainState:
  """`state` on `params` with a fresh ASGD optimizer state that averages from
  the first update (AWD: t0 = 0)."""
  init = jax.jit(state.tx.init, out_shardings=parallel.replicated(mesh))
  opt_state = init(params)
  # logical_or keeps the flag's dtype and sharding (as NT-ASGD's switch does).
  opt_state = opt_state._replace(
      averaging=jnp.logical_or(opt_state.averaging, True))
  return state.replace(params=params, opt_state=opt_state)


def merge_results(main: dict, stage: dict) -> dict:
  """The fine-tuned valid/test scores, the main stage's as before_finetune_*,
  and the stage's length."""
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
