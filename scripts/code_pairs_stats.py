"""Counts and code_bpe lengths of the 'code_instructions' pairs (docs/code_data.md).

  python scripts/code_pairs_stats.py [--packages numpy,jax] [--no_stdlib]
      [--spm_dir /tmp/code_spm]   # also piece lengths, and the exact round trip
"""

import argparse
import collections
import tempfile

import numpy as np

from rnnlm_jax.data import code_instructions as ci
from rnnlm_jax.data import paired
from rnnlm_jax.data.corpus import SPLITS


def _counts(pairs, limits):
  """{split: pairs} within the (min_i, max_i, min_r, max_r) limits, deduplicated."""
  lo_i, hi_i, lo_r, hi_r = limits
  seen, per_split = set(), collections.Counter()
  for split, instruction, response in pairs:
    if not (ci.within_limits(instruction, lo_i, hi_i) and ci.within_limits(response, lo_r, hi_r)):
      continue
    if (instruction, response) not in seen:
      seen.add((instruction, response))
      per_split[split] += 1
  return [per_split[s] for s in SPLITS]


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--packages', default='')
  parser.add_argument('--no_stdlib', action='store_true')
  parser.add_argument('--spm_dir', default='')
  parser.add_argument('--spm_vocab_size', type=int, default=8000)
  args = parser.parse_args()
  packages = tuple(p for p in args.packages.split(',') if p)
  pairs, files, skipped = [], collections.Counter(), collections.Counter()
  for split, _, path in ci.source_files(not args.no_stdlib, packages):
    try:
      found, why = ci.extract_pairs(path.read_bytes().decode('utf-8'))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
      skipped['files'] += 1
      continue
    files[split] += 1
    skipped.update(why)
    pairs += [(split, i, r) for _, i, r in found]
  print('files', [files[s] for s in SPLITS], 'skipped', dict(skipped))
  d = ci.defaults()
  for name, limits in (
      ('no length limit', (0, 0, 0, 0)), ('response <= 2000', (0, 0, 0, 2000)),
      ('defaults', (d['min_instruction_chars'], d['max_instruction_chars'],
                    d['min_response_chars'], d['max_response_chars']))):
    counts = _counts(pairs, limits)
    print(f'{name}: train/valid/test {counts}, total {sum(counts)}')
  settings = dict(code_stdlib=not args.no_stdlib, code_packages=packages)
  raw = paired.read_pairs('code_instructions', **settings)
  print('read_pairs info', raw.info)
  if not args.spm_dir:
    return
  corpus = paired.load_paired(
      'code_instructions', tokenizer='sentencepiece', spm_model_type='code_bpe',
      lowercase=False, spm_dir=args.spm_dir or tempfile.mkdtemp(),
      spm_vocab_size=args.spm_vocab_size, source_lang='doc', target_lang='py',
      **settings)
  for side, ids in (('instruction', corpus.source), ('response', corpus.target)):
    for s in SPLITS:
      n = np.array([len(x) for x in ids[s]])
      print(f'{side} {s}: pieces mean {n.mean():.1f} median {np.median(n):.0f} '
            f'p95 {np.percentile(n, 95):.0f} max {n.max()}')
  exact = all(corpus.decode_target(x) == r for s in SPLITS
              for x, r in zip(corpus.target[s], corpus.references[s]))
  print('decode_target == response for every pair:', exact)


if __name__ == '__main__':
  main()
