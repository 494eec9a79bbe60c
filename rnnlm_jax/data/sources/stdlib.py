"""The 'stdlib' source: the running interpreter's standard-library source.

Needs no download, so it is the default corpus (~12 MB of Python on 3.11,
char level). Files are split (not cut mid-file) by a hash of their path:
md5(relative path) mod 100 < 90 -> train, < 95 -> valid, else test. The split
is therefore stable under files being added or removed, and the same for every
machine with the same Python version. A different Python version has a
different stdlib and so a different corpus: Corpus.fingerprint tells them apart.
"""

import hashlib
import itertools
import os
import pathlib
import sysconfig

from typing import Iterator

from rnnlm_jax.data.corpus import md5_of, RawCorpus, SPLITS
from rnnlm_jax.data.streaming import regroup, TextSource

# Directory names never descended into: third-party code and test suites
# (test, tests, idlelib/idle_test, lib2to3/tests, ...).
_SKIP_DIRS = frozenset({'site-packages', 'dist-packages', 'test', 'tests',
                        'idle_test', '__pycache__'})
# Placed on its own line between files, so a model can learn file boundaries.
SEPARATOR = '# ' + '=' * 70 + '\n'


def stdlib_root() -> pathlib.Path:
  return pathlib.Path(sysconfig.get_paths()['stdlib'])


def _skip_dir(name: str) -> bool:
  # config-3.x-<platform> holds build scripts, not library source.
  return (name in _SKIP_DIRS or name.startswith('.')
          or name.startswith('config-'))


def _skip_file(name: str) -> bool:
  # _sysconfigdata_*.py is generated at build time and differs per machine.
  return not name.endswith('.py') or name.startswith('_sysconfigdata')


def list_files(root: pathlib.Path) -> list[str]:
  """Sorted posix relative paths of the stdlib *.py files that are used."""
  rels = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = [d for d in dirnames if not _skip_dir(d)]
    rel_dir = pathlib.Path(dirpath).relative_to(root)
    rels.extend((rel_dir / f).as_posix() for f in filenames
                if not _skip_file(f))
  return sorted(rels)


def split_of(rel_path: str) -> str:
  """'train' | 'valid' | 'test' for a relative path (by its md5)."""
  bucket = int(hashlib.md5(rel_path.encode('utf-8')).hexdigest(), 16) % 100
  return 'train' if bucket < 90 else 'valid' if bucket < 95 else 'test'


def iter_files(root: pathlib.Path, rels) -> Iterator[tuple[str, str]]:
  """(rel_path, text) of each file, skipping unreadable / non-UTF-8 files.

  Skipping depends only on file content, so it is deterministic.
  """
  for rel in rels:
    try:
      text = (root / rel).read_bytes().decode('utf-8')
    except (OSError, UnicodeDecodeError):
      continue
    if not text.endswith('\n'):
      text += '\n'  # keep the separator on a line of its own
    yield rel, text


def read_files(root: pathlib.Path, rels: list[str]) -> list[tuple[str, str]]:
  """[(rel_path, text)] of iter_files."""
  return list(iter_files(root, rels))


_RULE = 'stdlib:md5(path)%100<90|<95'


def load_raw(root: pathlib.Path | None = None) -> RawCorpus:
  """The stdlib corpus as a RawCorpus named 'stdlib'.

  Args:
    root: stdlib directory; default: the running interpreter's.
  """
  root = stdlib_root() if root is None else pathlib.Path(root)
  files = read_files(root, list_files(root))
  parts = {s: [] for s in SPLITS}
  for rel, text in files:
    parts[split_of(rel)].append(text)
  texts = {s: SEPARATOR.join(p) for s, p in parts.items()}
  fingerprint = md5_of([_RULE] + [x for rel, text in files for x in (rel, text)])
  return RawCorpus(name='stdlib', texts=texts, fingerprint=fingerprint)


def stream_source(root: pathlib.Path | None = None) -> TextSource:
  """The stdlib corpus as a TextSource: the texts of load_raw, file by file."""
  root = stdlib_root() if root is None else pathlib.Path(root)
  rels = list_files(root)
  stats = []
  for rel in rels:
    try:
      st = (root / rel).stat()
      stats.append(f'{rel}:{st.st_size}:{st.st_mtime_ns}')
    except OSError:
      stats.append(f'{rel}:unreadable')
  by_split = {s: [r for r in rels if split_of(r) == s] for s in SPLITS}

  def pieces(split):
    for i, (_, text) in enumerate(iter_files(root, by_split[split])):
      if i:
        yield SEPARATOR
      yield text

  def fingerprint():
    # md5_of takes a generator: one file in memory at a time.
    return md5_of(itertools.chain(
        [_RULE], (x for rel, text in iter_files(root, rels) for x in (rel, text))))

  return TextSource(name='stdlib',
                    identity=md5_of([_RULE, str(root.resolve())] + stats),
                    chunks=lambda split: regroup(pieces(split)),
                    fingerprint=fingerprint)
