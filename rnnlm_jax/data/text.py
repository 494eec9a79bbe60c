"""Text <-> token lists, at word or character level.

Word level follows the Penn Treebank / Zaremba reader: whitespace-separated
tokens, with '<eos>' after every line (empty lines included, so an empty line
is the single token '<eos>'). On the Mikolov PTB files this gives the
canonical 929,589 / 73,760 / 82,430 tokens. Char level keeps every character,
'\n' included, so `detokenize(tokenize(t))` is `t` exactly. Level 'code_bpe'
is SentencePiece pieces of a code_bpe model trained per run (piece_corpus.py):
tokenizing needs that model, detokenizing does not (pieces are text with
'▁' for a space, and <0xNN> byte pieces).
"""

import re
from typing import Sequence

from rnnlm_jax.data.errors import DataError

EOS = '<eos>'
UNK = '<unk>'
LEVELS = ('word', 'char', 'code_bpe')
_BYTE_PIECE = re.compile(r'<0x([0-9A-F]{2})>')


def check_level(level: str, key: str = 'data.level') -> None:
  if level not in LEVELS:
    raise DataError(f'{key}={level!r} is not one of {LEVELS}')


def split_lines(text: str) -> list[str]:
  """Lines of `text` without their '\n'; a trailing '\n' ends the last line.

  Only '\n' separates lines (not str.splitlines' \r, \x0c, \u2028, ...), so
  stray control characters inside a line never create extra '<eos>' tokens.
  """
  if not text:
    return []
  lines = text.split('\n')
  if lines[-1] == '':
    lines.pop()  # the text ended with '\n': no extra empty line
  return lines


def tokenize(text: str, level: str, lowercase: bool = False) -> list[str]:
  """Splits `text` into tokens.

  Args:
    text: raw text.
    level: 'word' (whitespace split, '<eos>' after every line) or 'char'.
    lowercase: lowercase the text first.

  Returns:
    The tokens, as a list of str.
  """
  check_level(level)
  if level == 'code_bpe':
    raise DataError("data.level='code_bpe' text is tokenized by the run's "
                    'SentencePiece model: piece_corpus.load_tokenizer(workdir)')
  if lowercase:
    text = text.lower()
  if level == 'char':
    return list(text)
  tokens = []
  for line in split_lines(text):
    tokens.extend(line.split())
    tokens.append(EOS)
  return tokens


def detokenize(tokens: Sequence[str], level: str) -> str:
  """Inverse of `tokenize` (up to whitespace normalisation at word level).

  Word level: tokens joined by ' ', each '<eos>' becomes a line break.
  Char level: the characters joined. code_bpe: the pieces joined, '▁'
  read as a space, runs of byte pieces <0xNN> decoded as UTF-8 (as
  SentencePiece's own decoder for a code_bpe model).
  """
  check_level(level)
  if level == 'char':
    return ''.join(tokens)
  if level == 'code_bpe':
    return _join_pieces(tokens)
  lines, line = [], []
  for token in tokens:
    if token == EOS:
      lines.append(' '.join(line) + '\n')
      line = []
    else:
      line.append(token)
  if line:
    lines.append(' '.join(line))  # unterminated last line
  return ''.join(lines)


def _join_pieces(pieces: Sequence[str]) -> str:
  out, pending = [], bytearray()
  for piece in pieces:
    match = _BYTE_PIECE.fullmatch(piece)
    if match:
      pending.append(int(match.group(1), 16))
      continue
    if pending:
      out.append(pending.decode('utf-8', errors='replace'))
      pending = bytearray()
    out.append(piece.replace('\u2581', ' '))
  if pending:
    out.append(pending.decode('utf-8', errors='replace'))
  return ''.join(out)
