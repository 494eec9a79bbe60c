"""Streaming text sources: each split's text as a sequence of chunks.

The corpus cache (cache.py) tokenizes through these, so memory is bounded by
the chunk size and the vocabulary, not by the corpus. A source yields, per
split, str chunks whose concatenation is exactly the text the in-memory
loader builds (RawCorpus.texts[split]), and every chunk except a split's last
ends in '\\n'. Word tokens never span a line, so tokenizing chunk by chunk
(`chunk_tokens`) gives the tokens of the whole text.
"""

import dataclasses
import hashlib
from typing import Callable, Iterable, Iterator, Sequence

from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data.corpus import SPLITS

# Characters per chunk handed to the tokenizer. At word level a chunk's token
# list costs ~15x its size in Python objects, so 4M characters stay < 100 MB.
CHUNK_CHARS = 4 << 20


@dataclasses.dataclass(frozen=True)
class TextSource:
  """A corpus that can be read split by split, in chunks, any number of times.

  Attributes:
    name: corpus name (as RawCorpus.name).
    identity: cheap md5 naming the source (paths, file sizes and mtimes,
      sampled bytes), computed without reading the text; part of the cache key.
    chunks: split -> iterator over its text in chunks (each call reads anew).
    fingerprint_plan: how RawCorpus.fingerprint (corpus.md5_of over parts) is
      made: str parts and tuples of split names, a tuple standing for one part
      that is the concatenation of those splits' texts; None when
      `fingerprint` computes it instead.
    fingerprint: () -> the md5, for sources whose parts are not in split
      order (stdlib hashes file by file).
    check_split: (split, has_text) -> None; raises DataError when a split
      that must not be blank is (e.g. a part of data.split_fractions).
  """
  name: str
  identity: str
  chunks: Callable[[str], Iterator[str]]
  fingerprint_plan: Sequence | None = None
  fingerprint: Callable[[], str] | None = None
  check_split: Callable[[str, bool], None] | None = None


def per_split_plan(header: Sequence[str]) -> list:
  """[*header, 'train', ('train',), 'valid', ('valid',), 'test', ('test',)]."""
  return list(header) + [x for s in SPLITS for x in (s, (s,))]


class PartsMd5:
  """corpus.md5_of computed incrementally: each part's length comes first."""

  def __init__(self):
    self._h = hashlib.md5()

  def part(self, data: str | bytes) -> None:
    self.begin(len(data.encode('utf-8') if isinstance(data, str) else data))
    self.feed(data)

  def begin(self, num_bytes: int) -> None:
    self._h.update(f'{num_bytes}:'.encode())

  def feed(self, data: str | bytes) -> None:
    self._h.update(data.encode('utf-8') if isinstance(data, str) else data)

  def hexdigest(self) -> str:
    return self._h.hexdigest()


class JoinedLinesMd5:
  """md5 of '\n'.join(lines), fed a line or a block of lines at a time
  (nothing is joined beyond one block)."""

  def __init__(self):
    self._h, self._empty = hashlib.md5(), True

  def add(self, line: str) -> None:
    self._h.update(line.encode('utf-8') if self._empty
                   else ('\n' + line).encode('utf-8'))
    self._empty = False

  def extend(self, lines: Sequence[str]) -> None:
    if lines:
      self.add('\n'.join(lines))

  def hexdigest(self) -> str:
    return self._h.hexdigest()


def regroup(pieces: Iterable[str], size: int | None = None) -> Iterator[str]:
  """Joins consecutive line-aligned pieces into chunks of about `size`."""
  size = size or CHUNK_CHARS
  buf, length = [], 0
  for piece in pieces:
    buf.append(piece)
    length += len(piece)
    if length >= size:
      yield ''.join(buf)
      buf, length = [], 0
  if buf:
    yield ''.join(buf)


def chunk_tokens(chunk: str, level: str) -> list[str] | str:
  """Tokens of one chunk, as text.tokenize gives them (a str at char level).

  Word level: every '\\n' becomes a separate '<eos>' token; an unterminated
  last line gets one too (only a split's last chunk can have one).
  """
  if level == 'char':
    return chunk
  tokens = chunk.replace('\n', f' {text_lib.EOS}\n').split()
  if chunk and not chunk.endswith('\n'):
    tokens.append(text_lib.EOS)
  return tokens
