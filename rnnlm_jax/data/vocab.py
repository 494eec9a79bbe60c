"""Vocabulary: a fixed token <-> id mapping with stable, reproducible ids."""

import collections
import hashlib
import json
import pathlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.text import EOS, UNK

_FORMAT = 'rnnlm_jax.vocab'
_VERSION = 1


def _fingerprint(tokens: Sequence[str]) -> str:
  payload = json.dumps(list(tokens), ensure_ascii=False)
  return hashlib.md5(payload.encode('utf-8')).hexdigest()


def char_counts(text: str) -> collections.Counter:
  """Character counts of `text` via numpy (a Counter loop is ~10x slower)."""
  if not text:
    return collections.Counter()
  codes = np.frombuffer(text.encode('utf-32-le'), dtype=np.uint32)
  counts = np.bincount(codes)
  present = np.flatnonzero(counts)
  return collections.Counter(
      {chr(c): int(n) for c, n in zip(present, counts[present])})


class Vocabulary:
  """Token list with id i <-> tokens[i]; must contain '<unk>'.

  Attributes:
    tokens: the token list (a tuple).
    unk_id: id of '<unk>' (every unknown token encodes to it).
    eos_id: id of '<eos>', or None if the vocabulary has none.
    fingerprint: md5 hex of the token list (identifies the id assignment).
  """

  def __init__(self, tokens: Sequence[str]):
    self.tokens = tuple(tokens)
    self._ids = {t: i for i, t in enumerate(self.tokens)}
    if len(self._ids) != len(self.tokens):
      dup = next(t for t in self.tokens if self.tokens.count(t) > 1)
      raise DataError(f'vocabulary token {dup!r} appears more than once')
    if UNK not in self._ids:
      raise DataError(f'vocabulary has no {UNK!r} token; add it to specials')
    self.unk_id = self._ids[UNK]
    self.eos_id = self._ids.get(EOS)
    self.fingerprint = _fingerprint(self.tokens)
    self._char_table = None  # built lazily by _encode_chars

  @classmethod
  def build(cls, tokens: Iterable[str], max_size: int = 0, min_count: int = 1,
            specials: Sequence[str] = (UNK, EOS)) -> 'Vocabulary':
    """Builds a vocabulary from a token stream (usually the train split).

    Ids: `specials` first (in order), then the other tokens by descending
    count, ties broken by the token string, so the same text always gives the
    same ids. A special that also occurs in the text (PTB contains '<unk>') is
    not duplicated.

    Args:
      tokens: token iterable; a str is taken as its characters (fast path).
      max_size: maximum vocabulary size, specials included; 0 = no limit.
      min_count: drop (non-special) tokens seen fewer times than this.
      specials: tokens that always get the first ids.
    """
    if isinstance(tokens, str):
      counts = char_counts(tokens)
    else:
      counts = collections.Counter(tokens)
    return cls.from_counts(counts, max_size, min_count, specials)

  @classmethod
  def from_counts(cls, counts: Mapping[str, int], max_size: int = 0,
                  min_count: int = 1,
                  specials: Sequence[str] = (UNK, EOS)) -> 'Vocabulary':
    """Like `build`, from token counts (e.g. summed over chunks of a stream)."""
    if max_size < 0 or min_count < 1:
      raise DataError(f'vocab max_size={max_size} must be >= 0 and '
                      f'min_count={min_count} >= 1')
    if max_size and max_size < len(specials):
      raise DataError(f'vocab max_size={max_size} is smaller than the '
                      f'{len(specials)} special tokens {tuple(specials)}')
    skip = set(specials)
    counts = {t: n for t, n in counts.items() if t not in skip}
    ranked = sorted((t for t, n in counts.items() if n >= min_count),
                    key=lambda t: (-counts[t], t))
    vocab = list(specials) + ranked
    if max_size:
      vocab = vocab[:max_size]
    return cls(vocab)

  def __len__(self) -> int:
    return len(self.tokens)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocabulary) and self.tokens == other.tokens

  def __hash__(self) -> int:
    return hash(self.tokens)

  def __repr__(self) -> str:
    return f'Vocabulary(size={len(self)}, fingerprint={self.fingerprint})'

  def id_of(self, token: str) -> int:
    """Id of `token`, or unk_id when it is not in the vocabulary."""
    return self._ids.get(token, self.unk_id)

  def token_of(self, id_: int) -> str:
    if not 0 <= int(id_) < len(self.tokens):
      raise DataError(f'token id {int(id_)} is outside the vocabulary '
                      f'(size {len(self.tokens)})')
    return self.tokens[int(id_)]

  def encode(self, tokens: Sequence[str]) -> np.ndarray:
    """Token ids, int32 [len(tokens)]; unknown tokens map to unk_id.

    A str is encoded as its characters with a vectorised lookup table (the
    char-level path: ~12M characters in well under a second).
    """
    if isinstance(tokens, str):
      return self._encode_chars(tokens)
    get, unk = self._ids.get, self.unk_id
    return np.fromiter((get(t, unk) for t in tokens), dtype=np.int32,
                       count=len(tokens))

  def _encode_chars(self, text: str) -> np.ndarray:
    codes = np.frombuffer(text.encode('utf-32-le'), dtype=np.uint32)
    if self._char_table is None:
      chars = [(ord(t), i) for i, t in enumerate(self.tokens) if len(t) == 1]
      size = max([c for c, _ in chars], default=0) + 1
      table = np.full(size, self.unk_id, dtype=np.int32)
      for c, i in chars:
        table[c] = i
      self._char_table = table
    table = self._char_table
    # Code points beyond the table are unknown characters.
    ids = np.full(codes.shape, self.unk_id, dtype=np.int32)
    known = codes < len(table)
    ids[known] = table[codes[known]]
    return ids

  def decode(self, ids: Iterable[int]) -> list[str]:
    """Tokens of `ids` (any int iterable or array); bad ids raise DataError."""
    return [self.token_of(i) for i in np.asarray(ids).reshape(-1)]

  def first_difference(self, other: 'Vocabulary') -> str | None:
    """None if equal, else a short description of the first difference."""
    if self.tokens == other.tokens:
      return None
    parts = []
    if len(self) != len(other):
      parts.append(f'size {len(self)} vs {len(other)}')
    for i, (a, b) in enumerate(zip(self.tokens, other.tokens)):
      if a != b:
        parts.append(f'id {i}: {a!r} vs {b!r}')
        break
    return '; '.join(parts)

  def save(self, path) -> None:
    """Writes the vocabulary as JSON (tokens in id order + fingerprint).

    `path`: a str, a pathlib.Path or any path object with with_name,
    write_text and replace, e.g. etils.epath.Path for gs:// (the caller's
    import: this package needs numpy only).
    """
    path = _as_path(path)
    payload = {'format': _FORMAT, 'version': _VERSION,
               'fingerprint': self.fingerprint, 'tokens': list(self.tokens)}
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(payload, ensure_ascii=False) + '\n',
                   encoding='utf-8')
    tmp.replace(path)  # atomic: a crash never leaves a half-written file

  @classmethod
  def load(cls, path) -> 'Vocabulary':
    """Reads a file written by `save`; anything else raises DataError."""
    path = _as_path(path)
    try:
      payload = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
      first = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise DataError(f'cannot read vocabulary file {path}: {first}'
                      '; re-create it with Vocabulary.save') from None
    if isinstance(payload, list) and all(isinstance(t, str) for t in payload):
      return cls(payload)  # a run's vocab.json written before the header existed
    if (not isinstance(payload, dict) or payload.get('format') != _FORMAT
        or not isinstance(payload.get('tokens'), list)):
      raise DataError(f'{path} is not a vocabulary file written by '
                      'Vocabulary.save')
    vocab = cls(payload['tokens'])
    if payload.get('fingerprint') != vocab.fingerprint:
      raise DataError(f'vocabulary file {path} is corrupt: its '
                      'fingerprint does not match its tokens; re-create it')
    return vocab


def _as_path(path):
  return path if hasattr(path, 'read_text') else pathlib.Path(path)
