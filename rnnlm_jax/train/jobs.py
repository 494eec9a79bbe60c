"""The jobs the command line runs: train (+ final eval and a sample), eval, generate."""

import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from rnnlm_jax import checkpoint, data, metrics, models, sampling
from rnnlm_jax.train import eval_methods
from rnnlm_jax.train import finetune, loop, ntasgd, optim, parallel
from rnnlm_jax.train import state as state_lib, workdir as workdir_lib


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       fresh: bool = False) -> dict[str, Any]:
  """Trains (or resumes) the run in `workdir`, fine-tunes it if configured,
  then writes results.json and a sample."""
  run = loop.build_run(config, workdir, fresh)
  done = workdir_lib.read_json(workdir, 'results.json')
  # A finished run is left alone, unless fine-tuning was switched on since.
  if done is not None and run.finished and (
      not finetune.enabled(config) or 'finetune_workdir' in done):
    logging.info('%s already finished; results.json is unchanged', workdir)
    run.checkpointer.close()
    return done
  start_time = time.perf_counter()
  runs = [run]
  if not finetune.enabled(config):
    results, steps = _train_stage(run)
  else:
    results, steps = _train_stage(run, cache=finetune.MAIN_RESULTS)
    runs.append(finetune.build_run(config, workdir, lambda: _best_params(run)))
    stage_results, stage_steps = _train_stage(runs[-1])
    results, steps = finetune.merge_results(results, stage_results), steps + stage_steps
  train_seconds = time.perf_counter() - start_time
  tokens = steps * config.train.batch_size * config.train.seq_len
  final = runs[-1]  # its state holds the final model's (eval) params
  sample = sample_text(final.model, final.state.params, final.corpus.vocab,
                       final.corpus.level, config.generate)
  results.update(train_seconds_this_invocation=train_seconds,
                 tokens_per_s_this_invocation=tokens / max(train_seconds, 1e-9),
                 tokens_per_s_per_device_this_invocation=(
                     tokens / max(train_seconds, 1e-9) / jax.device_count()),
                 sample=sample)
  workdir_lib.write_json(workdir, 'results.json', results)
  workdir_lib.append_text(workdir, 'samples.txt',
                          f'--- step {final.step} prompt {config.generate.prompt!r}\n'
                          f'{sample}\n')
  for r in runs:
    r.checkpointer.close()
  return results


def _train_stage(run: loop.Run, cache: str | None = None) -> tuple[dict, int]:
  """Trains `run` to its end and scores its best checkpoint: (results, steps
  taken now). With `cache`, the scores are kept in that file of the run's
  workdir and a finished run is not scored again."""
  if cache and run.finished:
    cached = workdir_lib.read_json(run.workdir, cache)
    if cached is not None:
      return cached, 0
  start_step = run.step
  writer = metrics.MetricWriter(run.workdir, resume_step=run.step)
  try:
    loop.train(run, writer)
    results = final_results(run, writer)
  finally:
    writer.close()
  if cache:
    workdir_lib.write_json(run.workdir, cache, results)
  return results, run.step - start_step


def _best_state(run: loop.Run):
  """(state of the run's best checkpoint, or its current state if there is
  none; the Restored, or None)."""
  best = run.checkpointer.restore(state_lib.checkpointable(run.state), run.carry,
                                  which='best')
  if best is None:
    return run.state, None
  return state_lib.from_checkpointable(run.state, best.state), best


def _best_params(run: loop.Run):
  """The eval params (NT-ASGD: the average) of the run's best checkpoint."""
  return ntasgd.for_eval(_best_state(run)[0]).params


def final_results(run: loop.Run, writer: metrics.MetricWriter) -> dict[str, Any]:
  """Valid and test numbers of the best checkpoint (test at eval.test_batch_size)."""
  state, best = _best_state(run)
  # NT-ASGD: score (and sample) the averaged params; nothing is saved after.
  run.state = ntasgd.for_eval(state)
  e, t = run.config.eval, run.config.train
  seq_len = e.seq_len or t.seq_len
  results = {'workdir': run.workdir, 'level': run.corpus.level,
             'corpus': run.corpus.name, 'corpus_fingerprint': run.corpus.fingerprint,
             'vocab_size': len(run.corpus.vocab),
             'num_params': models.count_params(run.state.params),
             'steps': run.step, 'epochs': loop.epochs_done(run),
             'best_step': best.step if best else run.step,
             'stopped_early': run.meta['stopped_early'],
             'devices': jax.device_count()}
  for split, batch_size in (('valid', e.batch_size), ('test', e.test_batch_size)):
    scores = eval_methods.evaluate(  # eval.method: static | dynamic | cache
        run.state, run.model, run.corpus.split(split), batch_size=batch_size,
        seq_len=seq_len, mesh=run.mesh, eval_config=e)
    writer.write(run.step, f'final_{split}', scores)
    results.update({f'{split}_{k}': v for k, v in scores.items()})
    logging.info('%s: loss %.4f ppl %.2f bits/token %.4f (%d tokens, batch %d)',
                 split, scores['loss'], scores['ppl'], scores['bits'],
                 scores['tokens'], batch_size)
  if run.corpus.oracle_nll:
    for split in ('valid', 'test'):
      results[f'{split}_oracle_ppl'] = float(np.exp(run.corpus.oracle_nll[split]))
  return results


def load_trained(config: ml_collections.ConfigDict, workdir: str,
                 which: str = 'best'):
  """(model, state, vocab) of a finished or running run; `which`: best | latest.

  A run with a fine-tuning stage that has started: the stage's checkpoints.
  """
  workdir = finetune.model_workdir(config, workdir)
  vocab = workdir_lib.load_vocab(workdir)
  model = models.make_model(config.model, len(vocab))
  mesh = parallel.make_mesh()
  tx, _ = optim.make_optimizer(config.train, 1, 1)
  state = state_lib.create_train_state(model, tx, config.seed, 1, 1,
                                       parallel.replicated(mesh))
  carry = model.initial_carry(config.train.batch_size)
  checkpointer = checkpoint.Checkpointer(workdir, config.train.keep_checkpoints)
  restored = checkpointer.restore(state_lib.checkpointable(state), carry, which)
  if restored is None and which == 'best':
    restored = checkpointer.restore(state_lib.checkpointable(state), carry, 'latest')
  checkpointer.close()
  if restored is None:
    raise checkpoint.CheckpointError(f'no readable checkpoint in {workdir}')
  state = state_lib.from_checkpointable(state, restored.state)
  return model, ntasgd.for_eval(state), vocab  # NT-ASGD: the averaged params


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        split: str = 'test', which: str = 'best') -> dict[str, float]:
  model, state, _ = load_trained(config, workdir, which)
  corpus = workdir_lib.load_corpus(config, workdir)
  batch_size = config.eval.test_batch_size if split == 'test' else config.eval.batch_size
  scores = eval_methods.evaluate(
      state, model, corpus.split(split), batch_size=batch_size,
      seq_len=config.eval.seq_len or config.train.seq_len,
      mesh=parallel.make_mesh(), eval_config=config.eval)
  scores.update(split=split, checkpoint=which, step=int(state.step))
  return scores


def prompt_ids(prompt: str, vocab: data.Vocabulary, level: str) -> np.ndarray:
  """Encodes a prompt without the end-of-line token tokenize() would append.

  An empty prompt starts from the boundary token (<eos>, or '\\n' for chars),
  i.e. the start of a new sentence or line.
  """
  tokens = prompt.split() if level == 'word' else list(prompt)
  if not tokens:
    boundary = vocab.eos_id if vocab.eos_id is not None else vocab.id_of('\n')
    return np.asarray([boundary], np.int32)
  ids = vocab.encode(tokens)
  if np.all(ids == vocab.unk_id) and tokens != ['<unk>']:
    logging.warning('every prompt token is out of vocabulary (read as <unk>)')
  return ids


def sample_text(model, params, vocab: data.Vocabulary, level: str,
                gen: ml_collections.ConfigDict) -> str:
  ids = sampling.generate_ids(
      model, params, prompt_ids(gen.prompt, vocab, level), length=gen.length,
      temperature=gen.temperature, top_k=gen.top_k, top_p=gen.top_p, seed=gen.seed)
  text = data.detokenize(vocab.decode(ids), level)
  separator = ' ' if level == 'word' and gen.prompt.strip() else ''
  return gen.prompt + separator + text


def generate(config: ml_collections.ConfigDict, workdir: str,
             which: str = 'best') -> str:
  model, state, vocab = load_trained(config, workdir, which)
  level = config.data.level
  return sample_text(model, state.params, vocab, level, config.generate)
