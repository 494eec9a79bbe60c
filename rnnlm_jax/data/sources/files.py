"""The 'files' source: a directory of train/valid/test files, or one file.

data.path is either
  * a directory with exactly one train, one valid and one test file, found by
    name: '*train*'; '*valid*' / '*val*' / '*dev*'; '*test*' (so 'train.txt',
    'ptb.train.txt', 'wiki.valid.tokens' all work), or
  * a single text file cut into contiguous train/valid/test parts by
    data.split_fractions (e.g. Tiny Shakespeare's input.txt). Cuts are moved
    forward to the next line start so no line is split between two parts.

load_raw reads the texts whole; stream_source yields the same texts in
line-aligned pieces (for the corpus cache, in bounded memory).
"""

import fnmatch
import os
import pathlib
from typing import Iterator, Sequence

from rnnlm_jax.data.corpus import md5_of, RawCorpus, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.streaming import per_split_plan, TextSource

_PATTERNS = {
    'train': ('*train*',),
    'valid': ('*valid*', '*val*', '*dev*'),
    'test': ('*test*',),
}


# Bytes read at a time by the streaming reader (each piece is then cut back
# to the last complete line).
READ_BYTES = 4 << 20
# Bytes hashed from each end of a file for its cheap identity.
_SAMPLE_BYTES = 64 << 10


def _decode(path: pathlib.Path, data: bytes, offset: int, first: bool) -> str:
  """Checked, newline-normalised text of `data`, found at byte `offset`."""
  nul = data.find(b'\x00')
  if nul >= 0:
    raise DataError(f'{path} looks binary (NUL byte at byte offset '
                    f'{offset + nul}); data.path must point at UTF-8 text')
  try:
    text = data.decode('utf-8-sig' if first else 'utf-8')
  except UnicodeDecodeError as e:
    raise DataError(f'{path} is not UTF-8 (bad byte 0x{data[e.start]:02x} at '
                    f'byte offset {offset + e.start}); re-encode it as UTF-8'
                    ) from None
  # '\r\n' never straddles two streamed pieces: each ends just after a '\n'.
  return text.replace('\r\n', '\n').replace('\r', '\n')


def _empty_error(path: pathlib.Path) -> DataError:
  return DataError(f'{path} is empty; data.path must point at non-empty text')


def read_text(path: pathlib.Path) -> str:
  """Reads a UTF-8 text file; binary, non-UTF-8 or empty files raise DataError.

  Line endings are normalised to '\n' (as text-mode open() does) and a UTF-8
  byte-order mark is dropped.
  """
  try:
    data = path.read_bytes()
  except OSError as e:
    raise DataError(f'cannot read {path}: {e.strerror or e}') from None
  text = _decode(path, data, 0, True)
  if not text.strip():
    raise _empty_error(path)
  return text


def iter_pieces(path: pathlib.Path, read_bytes: int | None = None
                ) -> Iterator[tuple[int, int, str]]:
  """(byte offset, byte length, text) of `path` in line-aligned pieces.

  The texts joined are read_text(path), with the same errors (raised when the
  reader gets there; an empty file at the end). Every piece but the last ends
  in '\n'; a line longer than `read_bytes` (default READ_BYTES) makes its
  piece longer.
  """
  read_bytes = read_bytes or READ_BYTES
  try:
    f = open(path, 'rb')  # pylint: disable=consider-using-with
  except OSError as e:
    raise DataError(f'cannot read {path}: {e.strerror or e}') from None
  with f:
    offset, pending, has_text = 0, [], False
    while True:
      try:
        block = f.read(read_bytes)
      except OSError as e:
        raise DataError(f'cannot read {path}: {e.strerror or e}') from None
      cut = block.rfind(b'\n') + 1 if block else 0
      if block and not cut:
        pending.append(block)  # no line end yet: keep reading
        continue
      data = b''.join(pending + [block[:cut] if block else b''])
      pending = [block[cut:]] if block else []
      if data:
        text = _decode(path, data, offset, offset == 0)
        has_text = has_text or bool(text.strip())
        yield offset, len(data), text
        offset += len(data)
      if not block:
        break
  if not has_text:
    raise _empty_error(path)


def read_piece(path: pathlib.Path, offset: int, length: int) -> str:
  """The text of one piece iter_pieces yielded (read again)."""
  try:
    with open(path, 'rb') as f:
      f.seek(offset)
      data = f.read(length)
  except OSError as e:
    raise DataError(f'cannot read {path}: {e.strerror or e}') from None
  return _decode(path, data, offset, offset == 0)


def file_identity(path: pathlib.Path) -> str:
  """Cheap identity of a file: path, size, mtime and its first/last bytes."""
  try:
    st = path.stat()
    with open(path, 'rb') as f:
      head = f.read(_SAMPLE_BYTES)
      f.seek(max(0, st.st_size - _SAMPLE_BYTES))
      tail = f.read(_SAMPLE_BYTES)
  except OSError as e:
    raise DataError(f'cannot read {path}: {e.strerror or e}') from None
  return md5_of([str(path.resolve()), str(st.st_size), str(st.st_mtime_ns),
                 head, tail])


def find_split_files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
  """{split: file} for a directory; DataError unless exactly one per split."""
  names = sorted(p.name for p in directory.iterdir()
                 if p.is_file() and not p.name.startswith('.'))
  found = {}
  for split, patterns in _PATTERNS.items():
    matches = [n for n in names
               if any(fnmatch.fnmatch(n.lower(), p) for p in patterns)]
    if len(matches) != 1:
      what = 'no file' if not matches else f'{len(matches)} files {matches}'
      raise DataError(
          f'data.path={str(directory)!r}: found {what} for the {split} split '
          f'(patterns {list(patterns)}); files there: {names}; keep exactly '
          'one train, one valid and one test file')
    found[split] = directory / matches[0]
  return found


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
  fractions = tuple(float(f) for f in fractions)
  if (len(fractions) != 3 or min(fractions) <= 0
      or abs(sum(fractions) - 1.0) > 1e-6):
    raise DataError(f'data.split_fractions={fractions} must be 3 positive '
                    'numbers summing to 1, e.g. (0.9, 0.05, 0.05)')
  return fractions


def split_by_fractions(text: str, fractions: Sequence[float]) -> dict:
  """Cuts `text` into contiguous {train, valid, test} parts.

  Each cut sits at fraction * len(text) characters, moved forward to just
  after the next '\n' (when there is one) so lines stay whole.
  """
  fractions = check_fractions(fractions)
  cuts = []
  for frac in (fractions[0], fractions[0] + fractions[1]):
    pos = int(round(frac * len(text)))
    newline = text.find('\n', pos)
    cuts.append(pos if newline < 0 else newline + 1)
  parts = [text[:cuts[0]], text[cuts[0]:cuts[1]], text[cuts[1]:]]
  return dict(zip(SPLITS, parts))


def corpus_name(path: pathlib.Path) -> str:
  """'ptb' for .../ptb, 'input' for .../input.txt."""
  return path.stem if path.is_file() else path.name


def _resolve(path: str) -> pathlib.Path:
  if not path:
    raise DataError("data.path is empty; set it to a directory with "
                    "train/valid/test files or to a single text file")
  p = pathlib.Path(os.path.expanduser(path))
  if not p.exists():
    raise DataError(f'data.path={path!r} does not exist; point it at a '
                    'directory with train/valid/test files or a text file')
  return p


def _split_rule(split_fractions: Sequence[float]) -> str:
  return 'files:single:' + ','.join(repr(float(f)) for f in split_fractions)


def _empty_part_error(p, split, split_fractions) -> DataError:
  return DataError(f'{p}: the {split} part of data.split_fractions='
                   f'{tuple(split_fractions)} is empty; the file is too '
                   'short or has too few lines; change the fractions')


def load_raw(path: str, split_fractions: Sequence[float]) -> RawCorpus:
  """Reads data.path (directory or single file) into a RawCorpus."""
  p = _resolve(path)
  if p.is_dir():
    files = find_split_files(p)
    texts = {s: read_text(f) for s, f in files.items()}
    fingerprint = md5_of(['files:dir'] + [x for s in SPLITS
                                          for x in (s, texts[s])])
  else:
    whole = read_text(p)
    texts = split_by_fractions(whole, split_fractions)
    for split, part in texts.items():
      if not part.strip():
        raise _empty_part_error(p, split, split_fractions)
    fingerprint = md5_of([_split_rule(split_fractions), whole])
  return RawCorpus(name=corpus_name(p), texts=texts, fingerprint=fingerprint)


class _SingleFile:
  """Streamed split_by_fractions: the cuts come from one scan of the file."""

  def __init__(self, path: pathlib.Path, fractions: Sequence[float]):
    self.path, self.fractions = path, check_fractions(fractions)
    self._pieces = None  # [(byte offset, byte length, char offset, chars)]
    self._bounds = None  # {split: (first char, end char)}

  def _scan(self) -> None:
    pieces, chars = [], 0
    for offset, length, text in iter_pieces(self.path):
      pieces.append((offset, length, chars, len(text)))
      chars += len(text)
    self._pieces = pieces
    cuts = []
    for frac in (self.fractions[0], self.fractions[0] + self.fractions[1]):
      pos = int(round(frac * chars))
      cuts.append(self._line_end_after(pos))
    # As split_by_fractions' slices: text[c1:] even when c1 < c0.
    self._bounds = dict(zip(SPLITS, [(0, cuts[0]), (cuts[0], max(cuts)),
                                     (cuts[1], chars)]))

  def _line_end_after(self, pos: int) -> int:
    """text.find('\n', pos) + 1, or pos without one (as split_by_fractions).

    Pieces end in '\n', so the newline is in the piece holding pos.
    """
    for offset, length, start, chars in self._pieces:
      if start <= pos < start + chars:
        newline = read_piece(self.path, offset, length).find('\n', pos - start)
        return pos if newline < 0 else start + newline + 1
    return pos

  def chunks(self, split: str) -> Iterator[str]:
    if self._pieces is None:
      self._scan()
    lo, hi = self._bounds[split]
    for offset, length, start, chars in self._pieces:
      if start + chars <= lo or start >= hi:
        continue
      text = read_piece(self.path, offset, length)
      yield text[max(lo - start, 0):hi - start]

  def check_split(self, split: str, has_text: bool) -> None:
    if not has_text:
      raise _empty_part_error(self.path, split, self.fractions)


def stream_source(path: str, split_fractions: Sequence[float]) -> TextSource:
  """data.path as a TextSource: the texts of load_raw, read in pieces."""
  p = _resolve(path)
  if p.is_dir():
    files = find_split_files(p)
    return TextSource(
        name=corpus_name(p),
        identity=md5_of(['files:dir'] + [x for s in SPLITS for x in
                                         (s, file_identity(files[s]))]),
        chunks=lambda s: (text for _, _, text in iter_pieces(files[s])),
        fingerprint_plan=per_split_plan(['files:dir']))
  rule = _split_rule(check_fractions(split_fractions))
  single = _SingleFile(p, split_fractions)
  return TextSource(name=corpus_name(p),
                    identity=md5_of([rule, file_identity(p)]),
                    chunks=single.chunks, fingerprint_plan=[rule, SPLITS],
                    check_split=single.check_split)
