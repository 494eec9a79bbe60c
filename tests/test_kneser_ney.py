"""Interpolated modified Kneser-Ney: formulas, normalisation, PTB perplexity."""

import collections
import math

import numpy as np
import pytest

from rnnlm_jax import configs
from rnnlm_jax.data import load_corpus
from rnnlm_jax.models.kneser_ney import KneserNeyLM

from conftest import REPO_ROOT, load_script

A, B, C, D = 0, 1, 2, 3  # toy ids; D never occurs in training


def _toy() -> KneserNeyLM:
  # One sequence (char-level convention): <s> a a a a a b b b b c a b.
  stream = [A] * 5 + [B] * 4 + [C, A, B]
  return KneserNeyLM.fit(np.array(stream), vocab_size=4, order=2)


def test_toy_discounts_match_count_of_counts():
  lm = _toy()
  # Bigram counts by hand: <s>a 1, aa 4, ab 2, bb 3, bc 1, ca 1
  # -> n1 = 3, n2 = 1, n3 = 1, n4 = 1.
  y = 3 / (3 + 2 * 1)
  expected_2 = [1 - 2 * y * 1 / 3, 2 - 3 * y * 1 / 1, 3 - 4 * y * 1 / 1]
  # Unigram continuation counts N1+(. w): a {<s>, a, c} = 3, b {a, b} = 2,
  # c {b} = 1 -> n1 = 1, n2 = 1, n3 = 1, n4 = 0.
  y = 1 / (1 + 2 * 1)
  expected_1 = [1 - 2 * y * 1 / 1, 2 - 3 * y * 1 / 1, 3 - 4 * y * 0 / 1]
  np.testing.assert_allclose(lm.discounts[1], expected_2)
  np.testing.assert_allclose(lm.discounts[0], expected_1)


def test_toy_probabilities_match_the_formula():
  lm = _toy()
  (d1, d2, d3), (e1, e2, e3) = lm.discounts[0], lm.discounts[1]
  # Unigrams: continuation counts a 3, b 2, c 1, d 0 (total 6), mixed with
  # uniform 1/4 by the held-out mass.
  gamma0 = (d1 * 1 + d2 * 1 + d3 * 1) / 6
  p1 = {A: (3 - d3) / 6 + gamma0 / 4, B: (2 - d2) / 6 + gamma0 / 4,
        C: (1 - d1) / 6 + gamma0 / 4, D: gamma0 / 4}
  # Context a: aa 4, ab 2 (total 6; one count-2 and one count-3+ child).
  gamma_a = (e2 * 1 + e3 * 1) / 6
  p_a = {A: (4 - e3) / 6 + gamma_a * p1[A], B: (2 - e2) / 6 + gamma_a * p1[B],
         C: gamma_a * p1[C], D: gamma_a * p1[D]}
  for w in (A, B, C, D):
    assert lm.next_distribution([A])[w] == pytest.approx(p_a[w])
    # d was never a context: its distribution is the unigram one.
    assert lm.next_distribution([D])[w] == pytest.approx(p1[w])
  # Scoring "a b d" from the start: p(a | <s>), p(b | a), p(d | b), where
  # context b has bb 3, bc 1 (total 4) and <s> has <s>a 1.
  gamma_b = (e1 * 1 + e3 * 1) / 4
  expected = [(1 - e1) / 1 + e1 * p1[A], p_a[B], gamma_b * p1[D]]
  np.testing.assert_allclose(lm.log_prob(np.array([A, B, D])),
                             np.log(expected))


def _reference_log_probs(train, test, vocab_size, order, eos):
  """Plain-dict interpolated modified KN with SRILM's sentence convention."""
  def sentences(stream):
    out, cur = [], ['<s>']
    for t in stream:
      cur.append(t)
      if t == eos:
        out.append(cur)
        cur = ['<s>']
    if len(cur) > 1:
      out.append(cur)
    return out

  raw = collections.Counter()
  for s in sentences(train):
    for i in range(1, len(s)):
      for k in range(1, min(order, i + 1) + 1):
        raw[tuple(s[i - k + 1:i + 1])] += 1
  left = collections.defaultdict(set)
  for g in raw:
    if len(g) > 1:
      left[g[1:]].add(g[0])
  count = {}
  for g, c in raw.items():
    keep_raw = len(g) == order or g[0] == '<s>'
    count[g] = c if keep_raw else len(left[g])
  disc = {}
  for k in range(1, order + 1):
    n = collections.Counter(min(c, 5) for g, c in count.items()
                            if len(g) == k)
    y = n[1] / (n[1] + 2 * n[2]) if n[1] + n[2] else 0
    # An empty count-of-count gives D = 0.5; D is kept within [0, j].
    disc[k] = [min(max(j - (j + 1) * y * n[j + 1] / n[j], 0), j) if n[j]
               else 0.5 for j in (1, 2, 3)]

  def d_of(g):
    return disc[len(g)][min(count[g], 3) - 1]

  def prob(hist, w):
    if not hist:
      total = sum(c for g, c in count.items() if len(g) == 1)
      held = sum(d_of(g) for g in count if len(g) == 1)
      c = count.get((w,), 0)
      top = c - d_of((w,)) if c else 0
      return top / total + held / total / vocab_size
    lower = prob(hist[1:], w)
    kids = [g for g in count if len(g) == len(hist) + 1
            and g[:-1] == tuple(hist)]
    if not kids:
      return lower
    total = sum(count[g] for g in kids)
    held = sum(d_of(g) for g in kids)
    g = tuple(hist) + (w,)
    top = count[g] - d_of(g) if g in count else 0
    return top / total + held / total * lower

  out = []
  for s in sentences(test):
    for i in range(1, len(s)):
      out.append(math.log(prob(s[max(0, i - order + 1):i], s[i])))
  return np.array(out)


@pytest.mark.parametrize('order', [2, 3, 4])
def test_matches_plain_reference_with_sentence_boundaries(order):
  rng = np.random.default_rng(order)
  eos, v = 1, 30
  zipf = 1 / np.arange(1, v)
  train = rng.choice(v - 1, size=1000, p=zipf / zipf.sum())
  test = np.concatenate([rng.integers(0, v, size=40), [eos]])  # v-1 unseen
  lm = KneserNeyLM.fit(train, vocab_size=v, order=order, boundary_id=eos)
  assert np.all(lm.discounts[1:] > 0)  # all three discounts matter
  expected = _reference_log_probs(train.tolist(), test.tolist(), v, order,
                                  eos)
  np.testing.assert_allclose(lm.log_prob(test), expected, rtol=1e-10)


@pytest.mark.parametrize('order', [2, 3, 4, 5])
def test_every_context_sums_to_one(order):
  rng = np.random.default_rng(order)
  v, eos = 12, 0
  train = rng.integers(0, v - 2, size=3000)  # ids v-2, v-1 never seen
  lm = KneserNeyLM.fit(train, vocab_size=v, order=order, boundary_id=eos)
  contexts = [[], [eos], [v - 1], [v - 1] * order, [3, eos, 5]]
  contexts += [train[i:i + j].tolist() for i in range(0, 2000, 97)
               for j in range(1, order + 2)]
  contexts += [rng.integers(0, v, size=order).tolist() for _ in range(20)]
  for ctx in contexts:
    p = lm.next_distribution(ctx)
    assert p.shape == (v,) and p.min() > 0
    assert p.sum() == pytest.approx(1.0, abs=1e-12), ctx
  # log_prob and next_distribution agree token by token.
  test = rng.integers(0, v, size=60)
  lp = lm.log_prob(test)
  for i in range(0, 60, 7):
    p = lm.next_distribution(test[:i])
    assert lp[i] == pytest.approx(np.log(p[test[i]]))


def test_one_sequence_without_boundary_sums_to_one():
  rng = np.random.default_rng(0)
  lm = KneserNeyLM.fit(rng.integers(0, 5, size=500), vocab_size=6, order=7)
  for ctx in ([], [5, 5], rng.integers(0, 5, size=10).tolist()):
    assert lm.next_distribution(ctx).sum() == pytest.approx(1.0, abs=1e-12)


def test_save_load_round_trip(tmp_path):
  rng = np.random.default_rng(1)
  train, test = rng.integers(0, 20, size=2000), rng.integers(0, 20, size=300)
  lm = KneserNeyLM.fit(train, vocab_size=20, order=4, boundary_id=3,
                       meta={'vocab_fingerprint': 'abc'})
  lm.save(tmp_path / 'kn.npz')
  back = KneserNeyLM.load(tmp_path / 'kn.npz')
  assert (back.order, back.vocab_size, back.boundary_id, back.meta) == (
      4, 20, 3, {'vocab_fingerprint': 'abc'})
  np.testing.assert_array_equal(back.log_prob(test), lm.log_prob(test))
  np.testing.assert_array_equal(back.next_distribution(test[:5]),
                                lm.next_distribution(test[:5]))


def test_bad_input_raises_one_line_errors(tmp_path):
  with pytest.raises(ValueError, match='order=8'):
    KneserNeyLM.fit(np.arange(5), vocab_size=5, order=8)
  with pytest.raises(ValueError, match='token id 5'):
    KneserNeyLM.fit(np.arange(6), vocab_size=5, order=3)
  lm = KneserNeyLM.fit(np.arange(5), vocab_size=5, order=3)
  with pytest.raises(ValueError, match='token id -1'):
    lm.log_prob(np.array([0, -1]))
  (tmp_path / 'x.npz').write_bytes(b'not a model')
  with pytest.raises(ValueError, match='not a Kneser-Ney model'):
    KneserNeyLM.load(tmp_path / 'x.npz')


def test_ptb_kn5_perplexity_matches_srilm(ptb_dir):
  # Mikolov et al. (2011): SRILM KN5 (no cutoffs) on this split: test 141.2.
  data = configs.ptb_config().data
  data.path = str(ptb_dir)
  corpus = load_corpus(data)
  lm = KneserNeyLM.fit(corpus.train, len(corpus.vocab), order=5,
                       boundary_id=corpus.vocab.eos_id)
  test_ppl = math.exp(-lm.log_prob(corpus.test).mean())
  assert test_ppl == pytest.approx(141.2, rel=0.05)


def test_ngram_ptb_script_row_and_table(ptb_dir, tmp_path):
  script = load_script(REPO_ROOT / 'scripts' / 'ngram_ptb.py', 'ngram_ptb_script')
  row = script.run_row('kn3_ptb', str(ptb_dir), str(tmp_path))
  assert row['order'] == 3 and row['level'] == 'word'
  assert 100 < math.exp(row['test_nats']) < math.exp(row['valid_nats']) < 250
  assert row['fit_s'] > 0 and row['fit_cpu_s'] > 0
  assert row['peak_rss_mib'] >= row['rss_before_mib'] > 0
  lm = KneserNeyLM.load(tmp_path / 'kn3_ptb.npz')
  assert lm.order == 3 and lm.meta['vocab_fingerprint']
  line = script.table([row]).splitlines()[-1]
  assert line.startswith('| KN3 | ptb (word) | 929,589 |')
