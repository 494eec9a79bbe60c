"""Corpus loading at scale: wall time and peak memory with and without the cache.

Writes word-level corpora of about --sizes MB (PTB's training text repeated;
PTB's valid/test as they are) into a temporary directory, then measures, each
in a fresh subprocess (so peak RSS values never mix):
  uncached         today's path: read, tokenize and hold the text in Python
                   (only for sizes <= --max-uncached-mb: ~79 bytes/token)
  cache build      first start with data.cache_dir: tokenize into the cache
  cached           a later start: manifest + checks + memory-map
  cached + pass    a cached start, then one pass of bptt_windows over train
                   (touches every mapped page: RSS then includes the file)

  nice -n 10 python scripts/corpus_scale.py --sizes 100,1000

Prints a markdown table; --out FILE also writes it there.
"""

import argparse
import json
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_PTB = REPO.parent / 'shared' / 'data' / 'ptb'


def make_corpus(ptb: pathlib.Path, directory: pathlib.Path, megabytes: int):
  """directory/ptb.{train,valid,test}.txt with train ~megabytes MB."""
  directory.mkdir(parents=True, exist_ok=True)
  train = (ptb / 'ptb.train.txt').read_bytes()
  repeats = max(1, round(megabytes * 1e6 / len(train)))
  with open(directory / 'ptb.train.txt', 'wb') as f:
    for _ in range(repeats):
      f.write(train)
  for split in ('valid', 'test'):
    shutil.copy(ptb / f'ptb.{split}.txt', directory / f'ptb.{split}.txt')
  return repeats


def child(args) -> None:
  """One measurement in this (fresh) process; prints a JSON line."""
  sys.path.insert(0, str(REPO))
  t0 = time.perf_counter()
  from rnnlm_jax import configs, data  # pylint: disable=import-outside-toplevel
  import_s = time.perf_counter() - t0
  d = configs.base_config().data
  d.source, d.path, d.level = 'files', args.path, 'word'
  d.cache_dir = args.cache_dir
  t1 = time.perf_counter()
  corpus = data.load_corpus(d)
  load_s = time.perf_counter() - t1
  rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  tokens = sum(len(corpus.split(s)) for s in data.SPLITS)
  mapped = sum(corpus.split(s).nbytes for s in data.SPLITS) if args.cache_dir else 0
  pass_s, checksum = None, 0
  if args.touch:
    t2 = time.perf_counter()
    for batch in data.bptt_windows(corpus.train, 20, 35):
      checksum += int(batch.targets[:, -1].sum())
    pass_s = time.perf_counter() - t2
  usage = resource.getrusage(resource.RUSAGE_SELF)
  print(json.dumps({
      'cpu_s': usage.ru_utime + usage.ru_stime, 'import_s': import_s,
      'load_s': load_s, 'pass_s': pass_s, 'peak_rss': usage.ru_maxrss * 1024,
      'peak_rss_after_load': rss_load, 'tokens': tokens, 'mapped': mapped,
      'dtype': str(corpus.train.dtype), 'fingerprint': corpus.fingerprint}))


def measure(path, cache_dir, touch=False) -> dict:
  cmd = [sys.executable, __file__, '--child', '--path', str(path),
         '--cache-dir', str(cache_dir)] + (['--touch'] if touch else [])
  t0 = time.perf_counter()
  out = subprocess.run(cmd, capture_output=True, text=True, check=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  result['process_s'] = time.perf_counter() - t0
  return result


def row(label, mb, r) -> str:
  mib = lambda b: f'{b / 2**20:,.0f}'
  beyond = (r['peak_rss'] - r['mapped']) if r['mapped'] else None
  cells = [f'{mb:,} MB', label, f"{r['tokens'] / 1e6:.1f} M", f"{r['load_s']:.2f}",
           f"{r['import_s']:.2f}", f"{r['process_s']:.2f}", f"{r['cpu_s']:.1f}",
           mib(r['peak_rss']),
           f"{r['peak_rss'] / r['tokens']:.1f}",
           mib(r['mapped']) if r['mapped'] else '-',
           mib(beyond) if r['mapped'] and r['pass_s'] is not None else '-',
           f"{r['pass_s']:.1f}" if r['pass_s'] is not None else '-']
  return '| ' + ' | '.join(cells) + ' |'


HEADER = ('| corpus | start | tokens | load_corpus s | import s | process s '
          '| process CPU s | peak RSS MiB | RSS bytes/token | mapped MiB '
          '| RSS beyond mapped MiB | bptt pass s |\n'
          '|---|---|---|---|---|---|---|---|---|---|---|---|')


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--sizes', default='100,1000', help='corpus sizes in MB')
  p.add_argument('--ptb', default=str(DEFAULT_PTB))
  p.add_argument('--max-uncached-mb', type=int, default=200)
  p.add_argument('--tmp', default=None, help='work dir (default: a new temp dir)')
  p.add_argument('--out', default=None)
  p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  p.add_argument('--touch', action='store_true', help=argparse.SUPPRESS)
  p.add_argument('--path', help=argparse.SUPPRESS)
  p.add_argument('--cache-dir', default='', help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return child(args)
  tmp = pathlib.Path(args.tmp or tempfile.mkdtemp(prefix='corpus_scale_'))
  lines = [HEADER]
  try:
    for mb in (int(s) for s in args.sizes.split(',')):
      corpus_dir, cache_dir = tmp / f'ptb_{mb}mb', tmp / f'cache_{mb}mb'
      repeats = make_corpus(pathlib.Path(args.ptb), corpus_dir, mb)
      print(f'{mb} MB: PTB train x {repeats}', file=sys.stderr, flush=True)
      runs = []
      if mb <= args.max_uncached_mb:
        runs.append(('uncached (today)', measure(corpus_dir, '')))
      runs.append(('cache build (1st start)', measure(corpus_dir, cache_dir)))
      runs.append(('cached start', measure(corpus_dir, cache_dir)))
      runs.append(('cached start + bptt pass', measure(corpus_dir, cache_dir, True)))
      prints = {r['fingerprint'] for _, r in runs}
      assert len(prints) == 1, f'fingerprints differ: {prints}'
      for label, r in runs:
        lines.append(row(label, mb, r))
        print(lines[-1], file=sys.stderr, flush=True)
      shutil.rmtree(corpus_dir)
      shutil.rmtree(cache_dir)
  finally:
    if not args.tmp:
      shutil.rmtree(tmp, ignore_errors=True)
  table = '\n'.join(lines)
  print(table)
  if args.out:
    pathlib.Path(args.out).write_text(table + '\n')


if __name__ == '__main__':
  main()
