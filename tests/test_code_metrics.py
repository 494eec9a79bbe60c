"""Code metrics on known strings."""

import pytest
import sacrebleu

from rnnlm_jax import code_metrics

ADD = 'def add(a, b):\n  """Sum."""\n  return a + b\n'
MUL = 'def mul(x, y):\n    return x * y\n'


def test_a_function_parses_and_a_truncated_one_does_not():
  assert code_metrics.parses(ADD)
  assert code_metrics.parses('    def f(self):\n        return 1\n')  # indented
  assert not code_metrics.parses('def add(a, b):\n  return (a +')
  assert not code_metrics.parses('def add(a, b):\n')  # no body
  assert not code_metrics.parses('  def f():\n return 1')  # bad indentation
  assert not code_metrics.parses('')  # no statement
  assert not code_metrics.parses('x = "\0"')


def test_exact_match_ignores_only_trailing_whitespace():
  assert code_metrics.normalize('def f():  \r\n  return 1\t\n\n\n') == \
      'def f():\n  return 1'
  scores = code_metrics.code_scores(
      [ADD.replace('\n', '  \n') + '\n\n', ADD.replace('  return', '   return'),
       ADD.rstrip('\n')],
      [ADD, ADD, ADD])
  assert scores['exact_match'] == pytest.approx(2 / 3)
  assert scores['count'] == 3


def test_chrf_and_bleu_of_identical_and_disjoint_code():
  same = code_metrics.code_scores([ADD, MUL], [ADD, MUL])
  assert same['chrf'] == pytest.approx(100.0)
  assert same['bleu'] == pytest.approx(100.0)
  assert same['exact_match'] == 1.0 and same['parse_rate'] == 1.0
  disjoint = code_metrics.code_scores(['qqq = zzz', 'kkk'], [ADD, MUL])
  assert disjoint['chrf'] < 10 and disjoint['bleu'] < 1
  assert disjoint['parse_rate'] == 1.0  # valid Python, though not the code
  assert code_metrics.code_scores(['qqq zzz'], [ADD])['parse_rate'] == 0.0


def test_scores_are_sacrebleus_of_the_normalized_strings():
  hyps = [ADD.replace('a + b', 'b + a'), MUL.replace('x * y', 'x*y') + '  \n']
  refs = [ADD, MUL]
  scores = code_metrics.code_scores(hyps, refs)
  normalized = [code_metrics.normalize(h) for h in hyps]
  refs = [code_metrics.normalize(r) for r in refs]
  assert scores['bleu'] == pytest.approx(
      sacrebleu.corpus_bleu(normalized, [refs]).score)
  assert scores['chrf'] == pytest.approx(
      sacrebleu.corpus_chrf(normalized, [refs]).score)
  assert 0 < scores['chrf'] < 100 and scores['parse_rate'] == 1.0


@pytest.mark.parametrize('hyps,refs,message', [
    (['a'], ['a', 'b'], '1 hypotheses but 2 references'),
    ([], [], 'no hypotheses'),
    ('abc', ['abc'], 'not one str'),
    ([1], ['a'], 'must all be str'),
])
def test_bad_input_is_a_one_line_error(hyps, refs, message):
  with pytest.raises(ValueError, match=message):
    code_metrics.code_scores(hyps, refs)
