"""Tasks: what the one training driver needs to know about a kind of problem.

A task says what its data is, how it batches an epoch, which model it
trains, how a split is scored and what a finished run shows of itself. The
driver (rnnlm_jax.training.trainer) does the rest the same way for every task:
mesh, optimizer, train_step, checkpoints, exact resume, SIGTERM, metrics.

  load_data(config, workdir) -> dataset        (.name, .fingerprint, .level;
                                                saves / checks its
                                                vocabularies in the workdir)
  load_vocabs(config, workdir) -> what make_model needs of a dataset, for
                                                using a trained run
  plan(config, dataset) -> data.EpochPlan-like (steps_per_epoch, batches(),
                                                resets_carry, lr_scale(),
                                                check_split_sizes())
  make_model(config, dataset) -> flax module   (call: (inputs, carry, train=)
                                                -> (logits, carry);
                                                initial_carry(batch_size))
  score(params, model, dataset, split, batch_size, config, mesh, method)
      -> {'loss', 'ppl', 'bits', 'tokens'}
  show(model, params, dataset, config) -> str  (a sample, translations, ...)
  final_results(params, model, dataset, config, workdir) -> dict
                                               (extra final numbers: BLEU)
  validation_metrics(params, model, dataset, config) -> dict
                                               (extra numbers at each
                                               evaluation, e.g. greedy BLEU;
                                               the names in `higher_better`
                                               may pick the best checkpoint)

`config.task` names the entry of TASKS; 'lm' (language modelling on a token
stream, also sentence mode) is the default; 'seq2seq' (translation.py) and
'instruct' (instruct.py: prompt-masked instruction tuning of the LMs)
register themselves.
"""

import dataclasses
from typing import Any, Callable

from rnnlm_jax import data, models, registry, sampling
from rnnlm_jax.training import run_files, scoring


@dataclasses.dataclass(frozen=True)
class Task:
  load_data: Callable[..., Any]
  plan: Callable[..., Any]
  make_model: Callable[..., Any]
  score: Callable[..., dict]
  show: Callable[..., str]
  load_vocabs: Callable[..., Any] | None = None  # None: load_data
  final_results: Callable[..., dict] = lambda *args: {}
  validation_metrics: Callable[..., dict] = lambda *args: {}
  higher_better: tuple[str, ...] = ()  # validation_metrics train.best_metric may name


TASKS: registry.Registry[Task] = registry.Registry('task')


def _lm_score(params, model, corpus, split, batch_size, config, mesh,
              method='static'):
  return scoring.score_stream(
      params, model, corpus.split(split), batch_size=batch_size,
      seq_len=config.eval.seq_len or config.train.seq_len, mesh=mesh,
      method=method, eval_config=config.eval, corpus=corpus)


@dataclasses.dataclass(frozen=True)
class _Vocab:
  """What make_model reads of a corpus, when only the vocabulary is known."""
  vocab: data.Vocabulary


TASKS.register('lm', Task(
    load_data=run_files.load_corpus,
    load_vocabs=lambda config, workdir: _Vocab(run_files.load_vocab(workdir)),
    plan=data.EpochPlan,
    make_model=lambda config, corpus: models.make_model(config.model,
                                                        len(corpus.vocab)),
    score=_lm_score,
    show=lambda model, params, corpus, config: sampling.sample_text(
        model, params, corpus.vocab, corpus.level, config.generate,
        getattr(corpus, 'tokenizer', None))))


def get(config) -> Task:
  # The other tasks register themselves on import.
  from rnnlm_jax.training import ensembles, instruct, translation  # pylint: disable=import-outside-toplevel,unused-import
  return TASKS.get(config.task)
