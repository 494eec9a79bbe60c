"""NLTK's KneserNeyInterpolated vs rnnlm_jax's KneserNeyLM on a PTB slice.

Both fit on the first sentences of ptb.train holding `--train_tokens` tokens
and score the first sentences of ptb.test holding `--test_tokens` tokens
(`</s>` included), side by side in one process, so the time ratio is the
measurement (the machine is shared). Perplexities differ by design: NLTK's KN
has one fixed discount (0.1) and pads with order-1 `<s>`, ours is modified KN.

  python experiments/ngram_ptb/nltk_speed.py --order 3 --train_tokens 20000
"""

import argparse
import math
import os
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)

import numpy as np  # noqa: E402
from nltk.lm import KneserNeyInterpolated  # noqa: E402
from nltk.lm.preprocessing import padded_everygram_pipeline  # noqa: E402

from rnnlm_jax import configs  # noqa: E402
from rnnlm_jax.data import load_corpus  # noqa: E402
from rnnlm_jax.models.kneser_ney import KneserNeyLM  # noqa: E402


def _head_sentences(ids: np.ndarray, eos: int, tokens: int) -> np.ndarray:
  """The longest prefix of whole sentences with at most `tokens` tokens."""
  ends = np.flatnonzero(ids == eos) + 1
  return ids[:ends[ends <= tokens][-1]]


def _sentences(ids: np.ndarray, vocab, eos: int) -> list[list[str]]:
  cuts = np.flatnonzero(ids == eos) + 1
  return [vocab.decode(s[:-1]) for s in np.split(ids, cuts[:-1])]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--order', type=int, default=3)
  ap.add_argument('--train_tokens', type=int, default=20000)
  ap.add_argument('--test_tokens', type=int, default=1000)
  args = ap.parse_args()
  corpus = load_corpus(configs.ptb_config().data)
  vocab, eos = corpus.vocab, corpus.vocab.eos_id
  train = _head_sentences(corpus.train, eos, args.train_tokens)
  test = _head_sentences(corpus.test, eos, args.test_tokens)

  t0 = time.perf_counter()
  ours = KneserNeyLM.fit(train, len(vocab), args.order, boundary_id=eos)
  t1 = time.perf_counter()
  ours_lp = ours.log_prob(test)
  t2 = time.perf_counter()

  grams, words = padded_everygram_pipeline(args.order,
                                           _sentences(train, vocab, eos))
  nltk_lm = KneserNeyInterpolated(args.order)
  nltk_lm.fit(grams, words)
  t3 = time.perf_counter()
  nltk_lp = []
  for sent in _sentences(test, vocab, eos):
    padded = ['<s>'] * (args.order - 1) + sent + ['</s>']
    for i in range(args.order - 1, len(padded)):
      p = nltk_lm.score(padded[i], padded[i - args.order + 1:i])
      nltk_lp.append(math.log(p) if p > 0 else -math.inf)
  t4 = time.perf_counter()

  n = len(test)
  print(f'order {args.order}, train {len(train)} tokens, test {n} tokens')
  print('| implementation | fit s | score s | score tokens/s | slice ppl '
        '| tokens with p = 0 |')
  print('| --- | ---: | ---: | ---: | ---: | ---: |')
  for name, fit_s, score_s, lp in (
      ('rnnlm_jax KneserNeyLM (modified KN)', t1 - t0, t2 - t1, ours_lp),
      ('nltk KneserNeyInterpolated (d=0.1)', t3 - t2, t4 - t3, nltk_lp)):
    lp = np.asarray(lp)
    ppl = math.exp(-float(np.mean(lp))) if np.all(np.isfinite(lp)) else math.inf
    print(f'| {name} | {fit_s:.3f} | {score_s:.3f} | {n / score_s:,.0f} | '
          f'{ppl:.1f} | {int(np.sum(~np.isfinite(lp)))} |')
  print(f'ratio nltk/ours: fit {(t3 - t2) / (t1 - t0):.0f}x, '
        f'score {(t4 - t3) / (t2 - t1):.0f}x')


if __name__ == '__main__':
  main()
