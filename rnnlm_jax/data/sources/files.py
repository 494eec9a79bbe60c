"""The 'files' source: a directory of train/valid/test files, or one file.

data.path is either
  * a directory with exactly one train, one valid and one test file, found by
    name: '*train*'; '*valid*' / '*val*' / '*dev*'; '*test*' (so 'train.txt',
    'ptb.train.txt', 'wiki.valid.tokens' all work), or
  * a single text file cut into contiguous train/valid/test parts by
    data.split_fractions (e.g. Tiny Shakespeare's input.txt). Cuts are moved
    forward to the next line start so no line is split between two parts.
"""

import fnmatch
import os
import pathlib
from typing import Sequence

from rnnlm_jax.data.corpus import md5_of, RawCorpus, SPLITS
from rnnlm_jax.data.errors import DataError

_PATTERNS = {
    'train': ('*train*',),
    'valid': ('*valid*', '*val*', '*dev*'),
    'test': ('*test*',),
}


def read_text(path: pathlib.Path) -> str:
  """Reads a UTF-8 text file; binary, non-UTF-8 or empty files raise DataError.

  Line endings are normalised to '\n' (as text-mode open() does) and a UTF-8
  byte-order mark is dropped.
  """
  try:
    data = path.read_bytes()
  except OSError as e:
    raise DataError(f'cannot read {path}: {e.strerror or e}') from None
  nul = data.find(b'\x00')
  if nul >= 0:
    raise DataError(f'{path} looks binary (NUL byte at byte offset {nul}); '
                    'data.path must point at UTF-8 text')
  try:
    text = data.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    raise DataError(f'{path} is not UTF-8 (bad byte 0x{data[e.start]:02x} at '
                    f'byte offset {e.start}); re-encode it as UTF-8') from None
  if not text.strip():
    raise DataError(f'{path} is empty; data.path must point at non-empty text')
  return text.replace('\r\n', '\n').replace('\r', '\n')


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


def split_by_fractions(text: str, fractions: Sequence[float]) -> dict:
  """Cuts `text` into contiguous {train, valid, test} parts.

  Each cut sits at fraction * len(text) characters, moved forward to just
  after the next '\n' (when there is one) so lines stay whole.
  """
  fractions = tuple(float(f) for f in fractions)
  if (len(fractions) != 3 or min(fractions) <= 0
      or abs(sum(fractions) - 1.0) > 1e-6):
    raise DataError(f'data.split_fractions={fractions} must be 3 positive '
                    'numbers summing to 1, e.g. (0.9, 0.05, 0.05)')
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


def load_raw(path: str, split_fractions: Sequence[float]) -> RawCorpus:
  """Reads data.path (directory or single file) into a RawCorpus."""
  if not path:
    raise DataError("data.path is empty; set it to a directory with "
                    "train/valid/test files or to a single text file")
  p = pathlib.Path(os.path.expanduser(path))
  if not p.exists():
    raise DataError(f'data.path={path!r} does not exist; point it at a '
                    'directory with train/valid/test files or a text file')
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
        raise DataError(f'{p}: the {split} part of data.split_fractions='
                        f'{tuple(split_fractions)} is empty; the file is too '
                        'short or has too few lines; change the fractions')
    rule = 'files:single:' + ','.join(repr(float(f)) for f in split_fractions)
    fingerprint = md5_of([rule, whole])
  return RawCorpus(name=corpus_name(p), texts=texts, fingerprint=fingerprint)
