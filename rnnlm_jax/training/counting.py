"""Count-based language models (model.type='ngram'): trained by counting.

The same run layout as the neural models, without jit or an optimizer:
`train_and_evaluate` prepares the workdir (config.json, vocab.json, the same
resume checks), counts the train split once (models.kneser_ney), saves the
model as `<workdir>/ngram.npz` and writes results.json (valid/test loss,
perplexity, bits per token, the n-gram counts, fit time, peak memory) and a
sample; `eval` and `generate` load the saved model. A finished run is left
alone.

Counting conventions (SRILM's): at word level each line is a sentence
`<s> ... </s>` with `<eos>` as `</s>`, predicted and counted; `<s>` is a
context only and no n-gram crosses a sentence; at char level the stream is
one sequence.
"""

import os
import resource
import sys
import time
from typing import Any

import numpy as np
from absl import logging
from etils import epath

from rnnlm_jax import data, sampling
from rnnlm_jax.models import kneser_ney
from rnnlm_jax.training import run_files, scoring

MODEL_FILE = 'ngram.npz'


def _peak_rss_mib() -> float:
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / (2**20 if sys.platform == 'darwin' else 2**10)


def _boundary(corpus) -> int | None:
  return corpus.vocab.eos_id if corpus.level == 'word' else None


def train_and_evaluate(config, workdir: str, fresh: bool = False) -> dict[str, Any]:
  """Counts (or reuses) the n-gram model of `workdir`; see the module doc."""
  run_files.prepare(config, workdir, fresh)
  done = run_files.read_json(workdir, 'results.json')
  path = epath.Path(workdir) / MODEL_FILE
  if done is not None and path.exists():
    logging.info('%s already finished; results.json is unchanged', workdir)
    return done
  corpus = run_files.load_corpus(config, workdir)
  start = time.perf_counter()
  lm = kneser_ney.KneserNeyLM.fit(
      np.asarray(corpus.train), len(corpus.vocab), config.model.ngram.order,
      boundary_id=_boundary(corpus),
      meta={'vocab_fingerprint': corpus.vocab.fingerprint})
  fit_seconds = time.perf_counter() - start
  lm.save(os.fspath(path))
  results = {'workdir': workdir, 'level': corpus.level, 'corpus': corpus.name,
             'corpus_fingerprint': corpus.fingerprint,
             'vocab_size': len(corpus.vocab), 'order': lm.order,
             'num_ngrams': lm.num_ngrams(), 'num_params': int(sum(lm.num_ngrams())),
             'discounts': lm.discounts.tolist(),
             'train_seconds_this_invocation': fit_seconds}
  for split in ('valid', 'test'):
    scores = score(lm, corpus.split(split))
    results.update({f'{split}_{k}': v for k, v in scores.items()})
    logging.info('%s: loss %.4f ppl %.2f bits/token %.4f (%d tokens)', split,
                 scores['loss'], scores['ppl'], scores['bits'], scores['tokens'])
  results['peak_rss_mib'] = _peak_rss_mib()
  results['sample'] = sample_text(lm, corpus.vocab, corpus.level,
                                  config.generate)
  run_files.write_json(workdir, 'results.json', results)
  run_files.append_text(workdir, 'samples.txt',
                        f'--- prompt {config.generate.prompt!r}\n'
                        f'{results["sample"]}\n')
  return results


def score(lm, stream: np.ndarray) -> dict[str, float]:
  """Every token of `stream` scored once (as the neural static scoring)."""
  log_p = lm.log_prob(np.asarray(stream))
  return scoring.summarize(float(-log_p.sum()), float(len(log_p)))


def load(workdir: str, vocab: data.Vocabulary):
  """The saved model of a run; refuses one counted over another vocabulary."""
  lm = kneser_ney.KneserNeyLM.load(os.fspath(epath.Path(workdir) / MODEL_FILE))
  if lm.meta.get('vocab_fingerprint') != vocab.fingerprint:
    raise run_files.RunMismatchError(
        f'{workdir}/{MODEL_FILE} was counted over another vocabulary than '
        f'{workdir}/vocab.json')
  return lm


def sample_text(lm, vocab: data.Vocabulary, level: str, gen) -> str:
  """The prompt and gen.length tokens drawn from the model (temperature and
  top-k / top-p as the neural sampler; temperature 0 is greedy)."""
  rng = np.random.default_rng(gen.seed)
  context = list(sampling.prompt_ids(gen.prompt, vocab, level))
  if gen.prompt == '':
    context = []  # the boundary token is the model's own sentence start
  out = []
  for _ in range(gen.length):
    p = lm.next_distribution(np.asarray(context, np.int64))
    out.append(_draw(rng, p, gen.temperature, gen.top_k, gen.top_p))
    context.append(out[-1])
  return sampling.continuation_text(gen.prompt, out, vocab, level)


def _draw(rng, p: np.ndarray, temperature: float, top_k: int, top_p: float) -> int:
  """One token id from p [V]: the neural sampler's filters, a numpy draw."""
  if temperature <= 0:
    return int(np.argmax(p))
  logits = np.log(np.maximum(p, 1e-300)) / temperature
  logits = np.asarray(sampling.filter_logits(logits, top_k, top_p), np.float64)
  q = np.exp(logits - logits.max())
  return int(rng.choice(len(p), p=q / q.sum()))
