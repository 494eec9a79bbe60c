"""Using a trained run: load its model, score a split, sample from it,
answer an instruction."""

from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from rnnlm_jax import checkpoint, decoding, models, sampling
from rnnlm_jax.training import counting, instruct_eval, optim, parallel, steps
from rnnlm_jax.training import finetune, run_files, tasks


CHECKPOINTS = ('best', 'latest', 'average')


def load_trained(config: ml_collections.ConfigDict, workdir: str,
                 which: str = 'best'):
  """(model, eval state, dataset) of a finished or running run (the dataset:
  what the task needs to encode and decode, e.g. the LM's vocabulary in
  `.vocab`); `which`: best | latest (best falls back to latest) | average
  (the mean of the eval params of every kept latest checkpoint, the last
  train.keep_checkpoints saves: checkpoint averaging). NT-ASGD: the averaged
  params. A run whose fine-tuning stage has started: the stage's
  checkpoints."""
  if which not in CHECKPOINTS:
    raise ValueError(f'checkpoint={which!r}: must be one of {CHECKPOINTS}')
  workdir = finetune.model_workdir(config, workdir)
  task = tasks.get(config)
  dataset = (task.load_vocabs or task.load_data)(config, workdir)
  model = task.make_model(config, dataset)
  mesh = parallel.make_mesh()
  tx, _ = optim.make_optimizer(config.train, 1, 1)
  state = steps.create_train_state(model, tx, config.seed, 1, 1,
                                   parallel.replicated(mesh))
  carry = model.initial_carry(config.train.batch_size)
  checkpointer = checkpoint.Checkpointer(workdir, config.train.keep_checkpoints)
  try:
    if which == 'average':
      return model, _average(checkpointer, state, carry, workdir), dataset
    restored = checkpointer.restore(steps.checkpointable(state), carry, which)
    if restored is None and which == 'best':
      restored = checkpointer.restore(steps.checkpointable(state), carry, 'latest')
  finally:
    checkpointer.close()
  if restored is None:
    raise checkpoint.CheckpointError(f'no readable checkpoint in {workdir}')
  state = steps.from_checkpointable(state, restored.state)
  return model, optim.for_eval(state), dataset


def _average(checkpointer, state, carry, workdir: str):
  """The newest latest checkpoint's eval state with its params replaced by
  the mean over every readable latest checkpoint, summed as they are read
  (the newest and the sum stay in memory). The step is the newest one's."""
  total, newest, averaged_steps = None, None, []
  for restored in checkpointer.restore_all(steps.checkpointable(state), carry):
    evaluated = optim.for_eval(steps.from_checkpointable(state, restored.state))
    params = jax.tree.map(lambda x: x.astype(jnp.float32), evaluated.params)
    if newest is None:
      newest, total = evaluated, params
    else:
      total = jax.tree.map(jnp.add, total, params)
    averaged_steps.append(restored.step)
  if newest is None:
    raise checkpoint.CheckpointError(f'no readable checkpoint in {workdir}')
  logging.info('averaging the params of the checkpoints at steps %s of %s',
               sorted(averaged_steps), workdir)
  count = len(averaged_steps)
  return newest.replace(params=jax.tree.map(
      lambda s, p: (s / count).astype(p.dtype), total, newest.params))

def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        split: str = 'test', which: str = 'best') -> dict[str, float]:
  """Scores `split` with the checkpoint by eval.method (test at
  eval.test_batch_size, as the final results)."""
  if models.MODEL_TYPES.get(config.model.type).counted:
    corpus = run_files.load_corpus(config, workdir)
    scores = counting.score(counting.load(workdir, corpus.vocab),
                            corpus.split(split))
    return dict(scores, split=split)
  model, state, _ = load_trained(config, workdir, which)
  task = tasks.get(config)
  corpus = task.load_data(config, workdir)
  batch_size = config.eval.test_batch_size if split == 'test' else config.eval.batch_size
  scores = task.score(state.params, model, corpus, split, batch_size, config,
                      parallel.make_mesh(), config.eval.method)
  scores.update(split=split, checkpoint=which, step=int(state.step))
  return scores


def generate(config: ml_collections.ConfigDict, workdir: str,
             which: str = 'best', instruction: str | None = None,
             beam: int | None = None, top_p: float | None = None) -> str:
  """A sample of the trained model by config.generate; with an
  `instruction`, the model's response to it (see `respond`)."""
  if instruction is not None:
    return respond(config, workdir, instruction, beam=beam, top_p=top_p,
                   which=which)
  if models.MODEL_TYPES.get(config.model.type).counted:
    vocab = run_files.load_vocab(workdir)
    return counting.sample_text(counting.load(workdir, vocab), vocab,
                                config.data.level, config.generate)
  if config.task == 'instruct':  # the prompt is an instruction
    return respond(config, workdir, config.generate.prompt, which=which)
  model, state, dataset = load_trained(config, workdir, which)
  tokenizer = (run_files.load_tokenizer(workdir)
               if config.data.level == 'code_bpe' else None)
  return sampling.sample_text(model, state.params, dataset.vocab, config.data.level,
                              config.generate, tokenizer)


def respond(config: ml_collections.ConfigDict, workdir: str, instruction: str,
            *, beam: int | None = None, top_p: float | None = None,
            which: str = 'best') -> str:
  """The response of an instruct run to `instruction` (in its template).

  Greedy by default; beam > 1: beam search of that width
  (eval.respond.length_penalty); top_p: nucleus sampling at
  generate.temperature with generate.seed. At most generate.length tokens.
  """
  if config.task != 'instruct':
    raise ValueError(f"--instruction needs a task='instruct' run; {workdir} "
                     f'was trained with task={config.task!r}')
  if beam is not None and top_p is not None:
    raise ValueError(f'--beam={beam} and --top_p={top_p} exclude each other')
  if beam is not None and beam < 1:
    raise ValueError(f'--beam={beam} must be >= 1 (1: greedy)')
  options = dict(method='greedy')
  if top_p is not None:
    options = dict(method='top_p', top_p=top_p, seed=config.generate.seed,
                   temperature=config.generate.temperature)
  elif beam is not None and beam > 1:
    options = dict(method='beam', beam_size=beam,
                   length_penalty=config.eval.respond.length_penalty)
  model, state, dataset = load_trained(config, workdir, which)
  (response,) = instruct_eval.respond(model, state.params, dataset, [instruction],
                                      max_len=config.generate.length, **options)
  return response


def _require_seq2seq(config, workdir: str, what: str) -> None:
  if config.task != 'seq2seq':
    raise ValueError(f"{what} needs a seq2seq run (task='seq2seq'); "
                     f'{workdir} was trained with task={config.task!r}')


def ensemble_members(config: ml_collections.ConfigDict) -> list[str]:
  """The workdirs in eval.ensemble.members (comma-separated)."""
  return [w.strip() for w in config.eval.ensemble.members.split(',') if w.strip()]


def load_translation_ensemble(config: ml_collections.ConfigDict, workdir: str,
                              members: Sequence[str], which: str = 'best'):
  """The seq2seq run in `workdir` and the finished seq2seq runs in `members`
  (their workdirs; any architecture), each at its `which` checkpoint, as one
  model -> (decoding.Ensemble, a tuple of their params, the run's corpus);
  with no members, the run's own (model, params, corpus). A member over
  other source or target vocabularies is a one-line error."""
  _require_seq2seq(config, workdir, 'an ensemble')
  model, state, corpus = load_trained(config, workdir, which)
  if not members:
    return model, state.params, corpus
  member_models, member_params = [model], [state.params]
  for member in members:
    saved = run_files.read_json(member, 'config.json')
    if saved is None:
      raise ValueError(f'ensemble member {member} holds no run (no config.json)')
    member_config = ml_collections.ConfigDict(saved)
    _require_seq2seq(member_config, member, 'an ensemble member')
    member_model, member_state, member_corpus = load_trained(member_config, member, which)
    for side in ('source', 'target'):
      if (getattr(member_corpus, f'{side}_vocab').tokens
          != getattr(corpus, f'{side}_vocab').tokens):
        raise ValueError(f'ensemble member {member}: its {side} vocabulary '
                         f'differs from that of {workdir} (members must share '
                         'both vocabularies)')
    member_models.append(member_model)
    member_params.append(member_state.params)
  logging.info('decoding an ensemble of %d runs: %s', len(member_models),
               [workdir, *members])
  return decoding.Ensemble(tuple(member_models)), tuple(member_params), corpus


def translate(config: ml_collections.ConfigDict, workdir: str,
              texts: Sequence[str], beam: int | None = None,
              which: str = 'best') -> list[str]:
  """Translations of `texts` by a seq2seq run (beam: eval.translate.beam_size
  when None; 1 is greedy), with the runs of eval.ensemble.members as one
  ensemble when it names any."""
  _require_seq2seq(config, workdir, 'translate')
  from rnnlm_jax.training import translation  # pylint: disable=import-outside-toplevel
  model, params, corpus = load_translation_ensemble(
      config, workdir, ensemble_members(config), which)
  t = config.eval.translate
  return translation.translate_texts(
      params, model, corpus, texts,
      beam=t.beam_size if beam is None else beam, translate_config=t)
