"""Using a trained run: load its model, score a split, sample from it."""

import ml_collections

from rnnlm_jax import checkpoint, sampling
from rnnlm_jax.train import optim, parallel, steps, tasks, trainer
from rnnlm_jax.train import run_files


def load_trained(config: ml_collections.ConfigDict, workdir: str,
                 which: str = 'best'):
  """(model, eval state, vocab) of a finished or running run; `which`: best |
  latest (best falls back to latest). NT-ASGD: the averaged params. A run
  whose fine-tuning stage has started: the stage's checkpoints."""
  workdir = trainer.model_workdir(config, workdir)
  vocab = run_files.load_vocab(workdir)
  model = tasks.get(config).make_model(config, _VocabOnly(vocab))
  mesh = parallel.make_mesh()
  tx, _ = optim.make_optimizer(config.train, 1, 1)
  state = steps.create_train_state(model, tx, config.seed, 1, 1,
                                   parallel.replicated(mesh))
  carry = model.initial_carry(config.train.batch_size)
  checkpointer = checkpoint.Checkpointer(workdir, config.train.keep_checkpoints)
  restored = checkpointer.restore(steps.checkpointable(state), carry, which)
  if restored is None and which == 'best':
    restored = checkpointer.restore(steps.checkpointable(state), carry, 'latest')
  checkpointer.close()
  if restored is None:
    raise checkpoint.CheckpointError(f'no readable checkpoint in {workdir}')
  state = steps.from_checkpointable(state, restored.state)
  return model, optim.for_eval(state), vocab


class _VocabOnly:
  """What make_model reads of a dataset, when only the vocabulary is known."""

  def __init__(self, vocab):
    self.vocab = vocab


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        split: str = 'test', which: str = 'best') -> dict[str, float]:
  """Scores `split` with the checkpoint by eval.method (test at
  eval.test_batch_size, as the final results)."""
  model, state, _ = load_trained(config, workdir, which)
  task = tasks.get(config)
  corpus = run_files.load_data(task, config, workdir)
  batch_size = config.eval.test_batch_size if split == 'test' else config.eval.batch_size
  scores = task.score(state.params, model, corpus, split, batch_size, config,
                      parallel.make_mesh(), config.eval.method)
  scores.update(split=split, checkpoint=which, step=int(state.step))
  return scores


def generate(config: ml_collections.ConfigDict, workdir: str,
             which: str = 'best') -> str:
  """A sample of the trained model by config.generate."""
  model, state, vocab = load_trained(config, workdir, which)
  return sampling.sample_text(model, state.params, vocab, config.data.level,
                              config.generate)
