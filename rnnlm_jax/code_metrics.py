"""Scores of generated code against reference code: exact match, chrF, BLEU,
parse rate.

  exact_match: fraction of hypotheses equal to their reference after
    `normalize`: trailing whitespace stripped from every line, then trailing
    blank lines dropped (so '\\r\\n' line ends, a missing final newline or
    spaces after a colon do not count; indentation and every other character
    do).
  chrf, bleu: sacreBLEU corpus chrF and BLEU (0-100) via rnnlm_jax.bleu, of
    the normalized strings. BLEU uses sacreBLEU's '13a' tokenizer, which
    splits punctuation but not identifiers: compare scores only under the
    same settings (the signatures are returned).
  parse_rate: fraction of hypotheses that `ast.parse` accepts, after
    `textwrap.dedent` (a response may be the indented body of a class or the
    continuation of an indented prompt; dedent removes only the indentation
    common to every line, so inconsistent indentation still fails). An empty
    hypothesis parses (an empty module) but is not a function: parse_rate
    counts only hypotheses with at least one statement.
"""

import ast
import textwrap
import warnings
from typing import Sequence

from rnnlm_jax import bleu


def normalize(code: str) -> str:
  """Trailing whitespace removed per line and at the end ('\\r' included)."""
  return '\n'.join(line.rstrip() for line in code.splitlines()).rstrip('\n')


def parses(code: str) -> bool:
  """Whether `code`, dedented, is a Python module with a statement."""
  try:
    with warnings.catch_warnings():  # e.g. invalid escape sequences in strings
      warnings.simplefilter('ignore', SyntaxWarning)
      tree = ast.parse(textwrap.dedent(code))
  except (SyntaxError, ValueError):  # ValueError: a NUL byte in the source
    return False
  return bool(tree.body)


def code_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
  """{exact_match, chrf, bleu, parse_rate, count} (see the module docstring),
  plus the sacreBLEU signatures; hypotheses[i] is scored against
  references[i]."""
  for name, texts in (('hypotheses', hypotheses), ('references', references)):
    if isinstance(texts, str):
      raise ValueError(f'{name} must be a sequence of strings, not one str')
  hypotheses, references = list(hypotheses), list(references)
  if len(hypotheses) != len(references):
    raise ValueError(f'{len(hypotheses)} hypotheses but {len(references)} '
                     'references; they must align')
  if not hypotheses:
    raise ValueError('code_scores got no hypotheses')
  if not all(isinstance(t, str) for t in hypotheses + references):
    raise ValueError('hypotheses and references must all be str')
  hyps = [normalize(h) for h in hypotheses]
  refs = [normalize(r) for r in references]
  corpus = bleu.corpus_bleu(hyps, refs)
  count = len(hyps)
  return dict(
      exact_match=sum(h == r for h, r in zip(hyps, refs)) / count,
      chrf=corpus.chrf, bleu=corpus.bleu,
      parse_rate=sum(parses(h) for h in hypotheses) / count, count=count,
      chrf_signature=corpus.chrf_signature, bleu_signature=corpus.bleu_signature)
