"""Sentence-pair loading with and without the paired cache (data.cache_dir).

Writes Multi30k De-En with its training pairs repeated --repeats times (valid
and test as they are) into a temporary directory, then measures in fresh
subprocesses (peak RSS never mixes): an uncached start (read, tokenize,
build vocabularies, encode), the first start with the cache (the same, then
writing it), and a cached start (read the raw pairs, memory-map the ids).

  nice -n 10 python scripts/paired_scale.py --repeats 1,10

Prints a markdown table; --out FILE also writes it there.
"""

import argparse
import gzip
import json
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_MULTI30K = REPO.parent / 'shared' / 'data' / 'multi30k'
STEMS = ('train', 'val', 'test_2016_flickr')


def make_pairs(source: pathlib.Path, directory: pathlib.Path, repeats: int) -> None:
  directory.mkdir(parents=True, exist_ok=True)
  for stem in STEMS:
    for lang in ('de', 'en'):
      text = gzip.open(source / f'{stem}.{lang}.gz', 'rb').read()
      with gzip.open(directory / f'{stem}.{lang}.gz', 'wb', compresslevel=1) as f:
        for _ in range(repeats if stem == 'train' else 1):
          f.write(text)


def child(args) -> None:
  sys.path.insert(0, str(REPO))
  from rnnlm_jax.data import paired  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  corpus = paired.load_paired('files', path=args.path, cache_dir=args.cache_dir,
                              source_lang='de', target_lang='en',
                              vocab_min_count=2)
  load_s = time.perf_counter() - t0
  usage = resource.getrusage(resource.RUSAGE_SELF)
  print(json.dumps({'load_s': load_s, 'cpu_s': usage.ru_utime + usage.ru_stime,
                    'peak_rss': usage.ru_maxrss * 1024,
                    'pairs': len(corpus.source['train']),
                    'fingerprint': corpus.fingerprint}))


def measure(path, cache_dir) -> dict:
  cmd = [sys.executable, __file__, '--child', '--path', str(path),
         '--cache-dir', str(cache_dir)]
  out = subprocess.run(cmd, capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


HEADER = ('| train pairs | start | load_paired s | process CPU s | peak RSS MiB |\n'
          '|---|---|---|---|---|')


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--repeats', default='1,10', help='train repeats, comma-separated')
  p.add_argument('--multi30k', default=str(DEFAULT_MULTI30K))
  p.add_argument('--out', default=None)
  p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  p.add_argument('--path', help=argparse.SUPPRESS)
  p.add_argument('--cache-dir', default='', help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return child(args)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix='paired_scale_'))
  lines = [HEADER]
  try:
    for repeats in (int(r) for r in args.repeats.split(',')):
      pairs_dir, cache_dir = tmp / f'pairs_{repeats}', tmp / f'cache_{repeats}'
      make_pairs(pathlib.Path(args.multi30k), pairs_dir, repeats)
      runs = [('uncached', measure(pairs_dir, '')),
              ('cache build (1st start)', measure(pairs_dir, cache_dir)),
              ('cached start', measure(pairs_dir, cache_dir))]
      prints = {r['fingerprint'] for _, r in runs}
      assert len(prints) == 1, f'fingerprints differ: {prints}'
      for label, r in runs:
        lines.append(f"| {r['pairs']:,} | {label} | {r['load_s']:.2f} | "
                     f"{r['cpu_s']:.1f} | {r['peak_rss'] / 2**20:,.0f} |")
        print(lines[-1], file=sys.stderr, flush=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  table = '\n'.join(lines)
  print(table)
  if args.out:
    pathlib.Path(args.out).write_text(table + '\n')


if __name__ == '__main__':
  main()
