"""Beam search's length penalty (GNMT alpha) of a trained seq2seq run, on one split.

Decodes the split once per alpha with the run's best checkpoint (or
--checkpoint latest / average) and prints
sacreBLEU (cased and lower-cased) and chrF for each: tune alpha on valid,
then report test at the chosen value (eval.translate.length_penalty).
--members: other finished runs over the same vocabularies, decoded with this
one as an ensemble (each step the mean of the models' probabilities).

  python scripts/tune_length_penalty.py --workdir /work/runs/m30k_attn \
      --alphas 0.0,0.6,1.0,1.4 --split valid
  python scripts/tune_length_penalty.py --workdir /work/runs/m30k_attn \
      --members /work/runs/m30k_lstm --alphas 1.0 --split test
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import rnnlm_jax  # noqa: E402
from rnnlm_jax import bleu  # noqa: E402
from rnnlm_jax.training import inference, translation  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--workdir', required=True)
  p.add_argument('--alphas', default='0.0,0.6,1.0,1.4')
  p.add_argument('--split', default='valid', choices=('valid', 'test'))
  p.add_argument('--beam', type=int, default=0, help='0: the run\'s beam size')
  p.add_argument('--checkpoint', default='best', choices=('best', 'latest', 'average'))
  p.add_argument('--members', default='',
                 help='comma-separated workdirs decoded with this run as an ensemble')
  args = p.parse_args()
  run = rnnlm_jax.load(args.workdir, args.checkpoint)
  if run.config.task != 'seq2seq':
    raise SystemExit(f'{args.workdir} is not a seq2seq run')
  members = [w.strip() for w in args.members.split(',') if w.strip()]
  model, params = run.model, run.params
  if members:
    model, params, _ = inference.load_translation_ensemble(
        run.config, args.workdir, members, args.checkpoint)
  t = run.config.eval.translate
  corpus = run.dataset
  source, references = translation.scored_pairs(corpus, run.config, args.split)
  beam = args.beam or t.beam_size
  print(f'| alpha | beam | {args.split} BLEU | lower-cased | chrF |\n|---|---|---|---|---|')
  for alpha in (float(a) for a in args.alphas.split(',')):
    ids = translation.translate_ids(params, model, source,
                                    batch_size=t.batch_size, beam_size=beam,
                                    max_len=t.max_len, length_penalty=alpha)
    scores = bleu.corpus_bleu([corpus.decode_target(x) for x in ids], references)
    print(f'| {alpha} | {beam} | {scores.bleu:.2f} | {scores.bleu_lowercase:.2f} '
          f'| {scores.chrf:.2f} |', flush=True)


if __name__ == '__main__':
  main()
