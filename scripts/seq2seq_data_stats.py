"""Vocabulary, length and padding statistics of a paired corpus (Multi30k).

  python scripts/seq2seq_data_stats.py --path ../shared/data/multi30k
  python scripts/seq2seq_data_stats.py --path ../shared/data/multi30k \
      --tokenizer sentencepiece --spm_dir /tmp/spm_stats

Prints Markdown tables (the numbers of docs/seq2seq_data.md): vocabulary
sizes (specials included) and unknown-token rates, sentence lengths in tokens
(no specials), and the padding of one training epoch at --batch_size for
bucketed batches, random batches, fixed boundaries and one fixed shape.
"""

import argparse
import sys

import numpy as np

sys.path.insert(0, '.')
from rnnlm_jax.data import paired_batching as pb  # noqa: E402
from rnnlm_jax.data.paired import load_paired, SPLITS, UNK_ID  # noqa: E402


def length_table(corpus) -> list[str]:
  rows = ['| split | side | pairs | mean | median | p90 | p99 | max |',
          '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |']
  for split in SPLITS:
    for side, lang in (('source', corpus.source_lang),
                       ('target', corpus.target_lang)):
      n = np.array([len(x) for x in getattr(corpus, side)[split]])
      p50, p90, p99 = np.percentile(n, [50, 90, 99])
      rows.append(f'| {split} | {lang} | {len(n):,} | {n.mean():.2f} | '
                  f'{p50:.0f} | {p90:.0f} | {p99:.0f} | {n.max()} |')
  return rows


def unk_rate(seqs) -> float:
  ids = np.concatenate(seqs)
  return float((ids == UNK_ID).mean())


def vocab_rows(corpus, label: str) -> list[str]:
  rows = []
  for side, lang, vocab in (
      ('source', corpus.source_lang, corpus.source_vocab),
      ('target', corpus.target_lang, corpus.target_vocab)):
    seqs = getattr(corpus, side)
    rates = ' | '.join(f'{100 * unk_rate(seqs[s]):.2f}%' for s in SPLITS)
    rows.append(f'| {label} | {lang} | {len(vocab):,} | {rates} |')
  return rows


def padding_table(corpus, batch_size: int, seed: int) -> list[str]:
  src, tgt = corpus.split('train')
  longest = max(pb.padded_width(int(pb.row_lengths(x).max()))
                for x in (src, tgt))
  variants = [
      ('bucketed, widths multiples of 8', {}),
      ('bucketed, boundaries (16, 32, 64)', {'boundaries': (16, 32, 64)}),
      ('random batches, widths multiples of 8', {'bucketed': False}),
      (f'random batches, one shape ({longest}, {longest})',
       {'bucketed': False, 'boundaries': (longest,)}),
  ]
  rows = ['| batches (B=%d) | padding | source | target | shapes |'
          % batch_size, '| --- | ---: | ---: | ---: | ---: |']
  for label, kwargs in variants:
    stats = pb.epoch_stats(src, tgt, batch_size, seed=seed, epoch=0, **kwargs)
    rows.append(f"| {label} | {100 * stats['padding']:.1f}% | "
                f"{100 * stats['source_padding']:.1f}% | "
                f"{100 * stats['target_padding']:.1f}% | "
                f"{len(stats['shapes'])} |")
  # Floor for widths in multiples of 8: every row padded only to its own width.
  own = [(pb.row_lengths(x), np.array([pb.padded_width(int(n)) for n in
                                       pb.row_lengths(x)])) for x in (src, tgt)]
  real, cells = sum(n.sum() for n, _ in own), sum(w.sum() for _, w in own)
  rows.append(f'| lower bound: each row at its own multiple of 8 | '
              f'{100 * (1 - real / cells):.1f}% | | | |')
  for split in ('valid', 'test'):
    stats = pb.epoch_stats(*corpus.split(split), batch_size, shuffle=False)
    rows.append(f"| {split}, eval_batches (corpus order) | "
                f"{100 * stats['padding']:.1f}% | "
                f"{100 * stats['source_padding']:.1f}% | "
                f"{100 * stats['target_padding']:.1f}% | "
                f"{len(stats['shapes'])} |")
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--path', required=True)
  parser.add_argument('--source_lang', default='de')
  parser.add_argument('--target_lang', default='en')
  parser.add_argument('--tokenizer', default='punct')
  parser.add_argument('--spm_dir', default='')
  parser.add_argument('--spm_vocab_size', type=int, default=8000)
  parser.add_argument('--min_counts', default='1,2')
  parser.add_argument('--batch_size', type=int, default=128)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  common = dict(path=args.path, source_lang=args.source_lang,
                target_lang=args.target_lang, tokenizer=args.tokenizer,
                spm_dir=args.spm_dir, spm_vocab_size=args.spm_vocab_size,
                lowercase=True)
  counts = [int(c) for c in args.min_counts.split(',')]
  corpora = {c: load_paired(vocab_min_count=c, **common) for c in counts}
  print('| vocabulary | lang | size | unk train | unk valid | unk test |')
  print('| --- | --- | ---: | ---: | ---: | ---: |')
  for c, corpus in corpora.items():
    label = (f'{args.tokenizer}, lower-cased, min count {c}'
             if args.tokenizer == 'punct' else
             f'sentencepiece {args.spm_vocab_size}, lower-cased')
    print('\n'.join(vocab_rows(corpus, label)))
    if args.tokenizer != 'punct':
      break  # min count does not apply to subword vocabularies
  corpus = corpora[counts[-1]]
  print()
  print('\n'.join(length_table(corpus)))
  print()
  print('\n'.join(padding_table(corpus, args.batch_size, args.seed)))


if __name__ == '__main__':
  main()
