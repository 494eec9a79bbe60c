"""corpus_bleu: sacreBLEU's argument order, cased/lower-cased BLEU, chrF."""

import math

import pytest
import sacrebleu

from rnnlm_jax.bleu import corpus_bleu

REFS = ['A man rides a red bike down the hill.',
        'Two dogs are playing in the snow.',
        'A woman is wearing a blue dress.']
# Shorter than the references (brevity penalty on one side only) and with
# a case difference.
HYPS = ['A man rides a bike down the hill.',
        'Two dogs play in the snow.',
        'a woman is wearing a dress.']


def test_matches_sacrebleu_in_its_argument_order():
  scores = corpus_bleu(HYPS, REFS)
  assert scores.bleu == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
  assert scores.chrf == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
  assert scores.bleu_lowercase == pytest.approx(
      sacrebleu.corpus_bleu(HYPS, [REFS], lowercase=True).score)
  assert scores.num_sentences == 3
  assert 0 < scores.bleu < 100


def test_swapping_the_arguments_changes_the_score():
  right, swapped = corpus_bleu(HYPS, REFS), corpus_bleu(REFS, HYPS)
  assert abs(right.bleu - swapped.bleu) > 1.0
  assert abs(right.chrf - swapped.chrf) > 1.0


def test_hypothesis_side_gets_the_brevity_penalty():
  # Each hypothesis is a prefix of its reference: every n-gram precision is
  # 1, so BLEU is 100 * exp(1 - r / c) with c, r the hypothesis / reference
  # token counts (13a keeps these sentences' tokens as they are).
  refs = ['the cat sat on the mat in the warm sun today',
          'two dogs are playing in the deep snow near the house']
  hyps = [' '.join(r.split()[:7]) for r in refs]
  c, r = (sum(len(x.split()) for x in xs) for xs in (hyps, refs))
  expected = 100 * math.exp(1 - r / c)
  assert corpus_bleu(hyps, refs).bleu == pytest.approx(expected)
  # Swapped, the long side is the hypothesis: no penalty, precisions < 1.
  assert corpus_bleu(refs, hyps).bleu != pytest.approx(expected, abs=0.1)


def test_lowercase_score_ignores_case_and_signatures_say_so():
  upper = [h.upper() for h in REFS]
  scores = corpus_bleu(upper, REFS)
  assert scores.bleu_lowercase == pytest.approx(100.0)
  assert scores.bleu < 50.0
  assert 'case:mixed' in scores.bleu_signature
  assert 'case:lc' in scores.bleu_lowercase_signature
  assert 'tok:13a' in scores.bleu_signature
  assert scores.chrf_signature.startswith('nrefs:1')
  assert set(scores.as_dict()) == {'bleu', 'bleu_lowercase', 'chrf'}


def test_several_reference_sets():
  other = ['A man rides a bike down the hill.', 'Dogs play in snow.',
           'A woman wears a dress.']
  scores = corpus_bleu(HYPS, [REFS, other])
  assert scores.bleu == pytest.approx(
      sacrebleu.corpus_bleu(HYPS, [REFS, other]).score)
  assert scores.bleu > corpus_bleu(HYPS, REFS).bleu
  assert 'nrefs:2' in scores.bleu_signature


@pytest.mark.parametrize('hyps, refs, fragment', [
    (HYPS, REFS[:2], 'has 2 sentences but there are 3'),
    ([], [], 'no hypotheses'),
    ('a man', REFS, 'not one str'),
    ([1, 2, 3], REFS, 'must all be str'),
])
def test_bad_arguments(hyps, refs, fragment):
  with pytest.raises(ValueError, match=fragment):
    corpus_bleu(hyps, refs)
