"""Count-based baselines: interpolated modified Kneser-Ney on PTB and stdlib.

Rows (each fit and scored in its own fresh subprocess, so peak RSS is that
model's process alone):

  kn3_ptb     KN3 on PTB, word level (configs.ptb_config().data)
  kn5_ptb     KN5 on PTB, word level
  kn7_stdlib  KN7 on the stdlib corpus, char level (configs.base_config().data)

Word level uses `<eos>` as the sentence boundary (SRILM's convention, see
rnnlm_jax/models/kneser_ney.py); char level scores the stream as one
sequence. Prints a markdown table: valid/test perplexity (bits/char for
chars), fit and scoring wall time with the process's CPU time beside it
(numpy's sorts use one core, so on an idle machine wall time is close to
CPU time; other load stretches only the wall time), RSS before fitting
(interpreter, imports, corpus) and peak RSS.

  nice -n 10 python scripts/ngram_ptb.py
  python scripts/ngram_ptb.py --rows kn3_ptb --save_dir /tmp/kn
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)

ROWS = {'kn3_ptb': ('ptb', 3), 'kn5_ptb': ('ptb', 5),
        'kn7_stdlib': ('stdlib', 7)}


def _rss_mib() -> float:
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def run_row(name: str, ptb: str, save_dir: str) -> dict:
  """Fits and scores one row in this process; returns its measurements."""
  from rnnlm_jax import configs
  from rnnlm_jax.data import load_corpus
  from rnnlm_jax.models.kneser_ney import KneserNeyLM

  source, order = ROWS[name]
  if source == 'ptb':
    data = configs.ptb_config().data
    data.path = ptb
  else:
    data = configs.base_config().data
  corpus = load_corpus(data)
  boundary = corpus.vocab.eos_id if corpus.level == 'word' else None
  rss_before = _rss_mib()
  t0, c0 = time.perf_counter(), time.process_time()
  lm = KneserNeyLM.fit(corpus.train, len(corpus.vocab), order,
                       boundary_id=boundary,
                       meta={'vocab_fingerprint': corpus.vocab.fingerprint})
  t1, c1 = time.perf_counter(), time.process_time()
  nats = {s: float(-lm.log_prob(corpus.split(s)).mean())
          for s in ('valid', 'test')}
  t2, c2 = time.perf_counter(), time.process_time()
  if save_dir:
    os.makedirs(save_dir, exist_ok=True)
    lm.save(os.path.join(save_dir, f'{name}.npz'))
  return {'row': name, 'corpus': corpus.name, 'level': corpus.level,
          'order': order, 'train_tokens': len(corpus.train),
          'scored_tokens': len(corpus.valid) + len(corpus.test),
          'valid_nats': nats['valid'], 'test_nats': nats['test'],
          'fit_s': t1 - t0, 'score_s': t2 - t1,
          'fit_cpu_s': c1 - c0, 'score_cpu_s': c2 - c1,
          'rss_before_mib': rss_before,
          'peak_rss_mib': resource.getrusage(
              resource.RUSAGE_SELF).ru_maxrss / 1024,
          'ngrams': lm.num_ngrams(), 'discounts': lm.discounts.tolist()}


def _metric(r: dict, split: str) -> str:
  nats = r[f'{split}_nats']
  if r['level'] == 'char':
    return f'{nats / math.log(2):.3f} bpc'
  return f'{math.exp(nats):.2f}'


def table(results: list[dict]) -> str:
  lines = ['| model | corpus | train tokens | valid | test | fit s (CPU s) | '
           'score s, valid+test (CPU s) | RSS before fit MiB | peak RSS MiB |',
           '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
  for r in results:
    lines.append(
        f"| KN{r['order']} | {r['corpus']} ({r['level']}) | "
        f"{r['train_tokens']:,} | {_metric(r, 'valid')} | "
        f"{_metric(r, 'test')} | {r['fit_s']:.2f} ({r['fit_cpu_s']:.2f}) | "
        f"{r['score_s']:.2f} ({r['score_cpu_s']:.2f}) | "
        f"{r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} |")
  return '\n'.join(lines)


def main():
  from rnnlm_jax import configs

  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--rows', default=','.join(ROWS),
                  help=f'comma-separated subset of {",".join(ROWS)}')
  ap.add_argument('--ptb', default=configs.DEFAULT_PTB,
                  help='directory with ptb.{train,valid,test}.txt')
  ap.add_argument('--save_dir', default='',
                  help='write each fitted model to SAVE_DIR/<row>.npz')
  ap.add_argument('--out', default='', help='also write results as JSON')
  ap.add_argument('--one', default='', help=argparse.SUPPRESS)  # child mode
  args = ap.parse_args()
  if args.one:
    print(json.dumps(run_row(args.one, args.ptb, args.save_dir)))
    return
  rows = [r for r in args.rows.split(',') if r]
  unknown = [r for r in rows if r not in ROWS]
  if unknown:
    ap.error(f'--rows {",".join(unknown)}: not one of {",".join(ROWS)}')
  results = []
  for name in rows:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--one', name,
         '--ptb', args.ptb, '--save_dir', args.save_dir],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
      sys.exit(f'row {name} failed:\n{proc.stderr}')
    results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f'{name}: done', file=sys.stderr)
  print(table(results))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
