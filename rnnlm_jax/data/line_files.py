"""One-sentence-per-line text files streamed from disk, in bounded memory.

TextLines is a Sequence of a file's lines that holds none of them: made, it
checks the whole file once (the errors of paired_sources.read_lines, and no
empty line) and takes its md5; iterated, it reads the file again, one line at
a time. MappedLines applies a function to each line as it is read (a JSONL
field), Streamed wraps any re-iterable source (TFDS examples);
selected_lines picks rows of any of them (the BLEU references of the pairs
that batching kept) without reading them.

The lines are the ones read_lines gives: '\\r\\n' and a lone '\\r' end lines
like '\\n', a UTF-8 byte-order mark is dropped, the last '\\n' ends the last
line. Random access (lines[i]) reads up to line i; it is for the odd lookup,
not for loops.
"""

import gzip
import itertools
import os
import pathlib
import zlib
from typing import Callable, Iterator, Sequence

import numpy as np

from rnnlm_jax.data import streaming
from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data.errors import DataError


# Bytes read per block; each block is cut after its last '\n', so a line
# (and a '\r\n') never spans two blocks.
BLOCK_BYTES = 1 << 20


def _binary_blocks(path: pathlib.Path) -> Iterator[bytes]:
  """The bytes of a plain or gzip file (gzip detected by its magic bytes, as
  read_lines does) in blocks that end with '\n' (the last: maybe not)."""
  try:
    with open(path, 'rb') as f:
      packed = f.read(2) == b'\x1f\x8b'
    f = gzip.open(path, 'rb') if packed else open(path, 'rb')
  except OSError as e:
    raise DataError(f'cannot read {path}: {e.strerror or e}') from None
  with f:
    rest = []  # the bytes after the last '\n' so far (a long line: parts)
    try:
      while block := f.read(BLOCK_BYTES):
        cut = block.rfind(b'\n') + 1
        if not cut:
          rest.append(block)
          continue
        yield b''.join(rest) + block[:cut]
        rest = [block[cut:]]
    except (OSError, EOFError, zlib.error) as e:
      if packed:
        raise DataError(f'{path} is not a valid gzip file ({e}); re-compress '
                        'it or store it uncompressed') from None
      raise DataError(f'cannot read {path}: {e.strerror or e}') from None
    tail = b''.join(rest)
    if tail:
      yield tail


def _line_blocks(path: pathlib.Path) -> Iterator[list[str]]:
  """The lines of the file, one list per block; errors name the line."""
  before = 0  # '\n'-terminated lines in the blocks so far
  for block in _binary_blocks(path):
    nul = block.find(b'\x00')
    if nul >= 0:
      line = before + block.count(b'\n', 0, nul) + 1
      raise DataError(f'{path}:{line} has a NUL byte: the file looks binary; '
                      'it must be UTF-8 text')
    try:
      text = block.decode('utf-8' if before else 'utf-8-sig')
    except UnicodeDecodeError as e:
      line = before + block.count(b'\n', 0, e.start) + 1
      raise DataError(f'{path}:{line} is not UTF-8 (bad byte '
                      f'0x{block[e.start]:02x}); re-encode the file as UTF-8'
                      ) from None
    before += block.count(b'\n') or 1  # (a last block without one: done)
    yield text_lib.split_lines(text.replace('\r\n', '\n').replace('\r', '\n'))


class _StreamedSequence(Sequence):
  """Equal to any sequence of the same strings, as a list is to a list."""
  __hash__ = None

  def __eq__(self, other) -> bool:
    if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
      return NotImplemented
    return len(self) == len(other) and all(
        a == b for a, b in zip(self, other))


class Streamed(_StreamedSequence):
  """The `length` items that iterate() yields, called anew for each pass
  (e.g. the examples of a prepared TFDS split)."""

  def __init__(self, iterate: Callable[[], Iterator[str]], length: int):
    self._iterate, self._len = iterate, length

  def __len__(self) -> int:
    return self._len

  def __iter__(self) -> Iterator[str]:
    return self._iterate()

  def __getitem__(self, i):
    if isinstance(i, slice):
      return list(itertools.islice(iter(self), *i.indices(self._len)))
    if i < 0:
      i += self._len
    if not 0 <= i < self._len:
      raise IndexError(i)
    return next(itertools.islice(iter(self), i, None))


class TextLines(Streamed):
  """The lines of a UTF-8 text file (plain or gzip), streamed.

  Attributes:
    path: the file.
    md5: hex md5 of the lines joined by '\\n' (what read_lines returns).
  Raises DataError (naming file and line) on an unreadable, binary, non-UTF-8
  or empty file, or an empty line.
  """

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    md5, count, content, blank = streaming.JoinedLinesMd5(), 0, False, 0
    for lines in _line_blocks(self.path):
      md5.extend(lines)
      for i, line in enumerate(lines):
        if line.strip():
          content = True
        elif not blank:
          blank = count + i + 1
      count += len(lines)
    if not content:
      raise DataError(f'{self.path} is empty; it must hold one sentence per line')
    if blank:
      raise DataError(f'{self.path}:{blank} is an empty line; every line must '
                      'hold a sentence (remove the pair from both files)')
    self.md5 = md5.hexdigest()
    super().__init__(
        lambda: itertools.chain.from_iterable(_line_blocks(self.path)), count)

  def __repr__(self) -> str:
    return f'TextLines({str(self.path)!r}, {self._len:,} lines)'


class MappedLines(Streamed):
  """fn(line) for each line of TextLines, computed as they are read (e.g.
  one field of a JSONL file)."""

  def __init__(self, lines: TextLines, fn: Callable[[str], str]):
    super().__init__(lambda: map(fn, lines), len(lines))


class SelectedLines(_StreamedSequence):
  """Rows `rows` (ascending) of streamed lines, stripped, read when
  iterated."""

  def __init__(self, lines: _StreamedSequence, rows: np.ndarray):
    self._lines, self._rows = lines, np.asarray(rows, np.int64)

  def __len__(self) -> int:
    return len(self._rows)

  def __iter__(self) -> Iterator[str]:
    rows = iter(self._rows.tolist())
    want = next(rows, None)
    for i, line in enumerate(self._lines):
      if want is None:
        return
      if i == want:
        yield line.strip()
        want = next(rows, None)

  def __getitem__(self, i):
    if isinstance(i, slice):
      if (i.step or 1) < 0:
        raise ValueError('SelectedLines slices take a positive step')
      return SelectedLines(self._lines, self._rows[i])
    return next(iter(SelectedLines(self._lines, self._rows[[i]])))


def selected_lines(lines: Sequence[str], rows) -> Sequence[str]:
  """lines[i].strip() for i in rows: a tuple, or for streamed lines
  (TextLines, MappedLines, Streamed) a SelectedLines that reads them when
  iterated."""
  if isinstance(lines, _StreamedSequence):
    return SelectedLines(lines, rows)
  return tuple(lines[i].strip() for i in np.asarray(rows).tolist())
