"""The corpus cache: tokenize once, memory-map the token ids on later starts.

Layout of data.cache_dir (a local directory, or gs:// etc. through a local
mirror, data/cache_mirror.py):
  <name>-<key>/manifest.json   format, version, key, source fingerprint,
                               tokenizer settings, token counts, dtype and
                               per-file checksums (full md5 + sampled blocks)
  <name>-<key>/vocab.json      the Vocabulary (Vocabulary.save)
  <name>-<key>/{train,valid,test}.ids   flat uint16 / uint32 token ids
The key hashes the source's cheap identity (paths, sizes, mtimes, sampled
bytes) and the tokenizer settings, so runs on the same data share a cache and
a changed file or setting selects a new one. A cache is built in a temporary
sibling directory and renamed into place when complete, so a killed build
never leaves one that looks valid. Loading checks the manifest, every file's
size and sampled blocks (milliseconds for any size; the full md5 is checked
only when building): damage is logged, naming the file, and the cache rebuilt.
"""

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import uuid

import numpy as np

from rnnlm_jax.data import cache_build
from rnnlm_jax.data import cache_mirror
from rnnlm_jax.data import streaming
from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.vocab import Vocabulary

log = logging.getLogger(__name__)


class DamagedCache(Exception):
  """A cache directory that must not be used; `path` names the bad file."""

  def __init__(self, path: pathlib.Path, problem: str):
    super().__init__(f'{path}: {problem}')
    self.path, self.problem = path, problem


@dataclasses.dataclass(frozen=True, eq=False)
class Cached:
  """What a cache holds: corpus name, vocabulary, fingerprint and streams.

  streams: {split: read-only np.memmap [N_split] of uint16 or uint32 ids}.
  """
  name: str
  vocab: Vocabulary
  fingerprint: str
  streams: dict
  directory: pathlib.Path


def settings_of(data_config, vocab: Vocabulary | None) -> dict:
  """The data settings that change the cached ids."""
  return {'level': str(data_config.level),
          'lowercase': bool(data_config.lowercase),
          'vocab_max_size': int(data_config.vocab_max_size),
          'vocab_min_count': int(data_config.vocab_min_count),
          # encoding with a given vocabulary (e.g. a checkpoint's) instead of
          # building one from train
          'given_vocab': vocab.fingerprint if vocab is not None else None}


def cache_key(source: streaming.TextSource, settings: dict) -> str:
  return md5_of([cache_build.FORMAT, str(cache_build.VERSION), source.identity,
                 json.dumps(settings, sort_keys=True)])[:16]


def safe_name(name: str) -> str:
  return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)


def read_manifest(directory: pathlib.Path, key: str,
                  fmt: str = cache_build.FORMAT,
                  version: int = cache_build.VERSION) -> dict:
  """The checked manifest of a cache of format `fmt`; DamagedCache if not."""
  path = directory / cache_build.MANIFEST
  try:
    manifest = json.loads(path.read_text(encoding='utf-8'))
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise DamagedCache(path, f'unreadable manifest ({type(e).__name__})'
                       ) from None
  if not isinstance(manifest, dict) or manifest.get('format') != fmt:
    raise DamagedCache(path, f'not a {fmt} manifest')
  if manifest.get('version') != version:
    raise DamagedCache(path, f'format version {manifest.get("version")!r}, '
                       f'this code reads {version}')
  if manifest.get('key') != key:
    raise DamagedCache(path, f'key {manifest.get("key")!r} is not the '
                       f"directory's {key!r}")
  return manifest


def open_ids(directory: pathlib.Path, entry: dict,
             dtype: np.dtype) -> np.ndarray:
  """Memory-maps one ids file after the cheap checks (size, sampled blocks)."""
  path = directory / entry['file']
  try:
    size = path.stat().st_size
  except OSError as e:
    raise DamagedCache(path, f'cannot stat ({e.strerror or e})') from None
  if size != entry['tokens'] * dtype.itemsize or size != entry['bytes']:
    raise DamagedCache(path, f'{size:,} bytes, the manifest says '
                       f'{entry["tokens"]:,} tokens x {dtype.itemsize}')
  if cache_build.sampled_blocks(path, size) != entry['blocks']:
    raise DamagedCache(path, 'checksum mismatch in a sampled block')
  if size == 0:  # np.memmap cannot map an empty file
    ids = np.zeros(0, dtype)
    ids.setflags(write=False)
    return ids
  return np.memmap(path, dtype=dtype, mode='r', shape=(entry['tokens'],))


def open_vocab(directory: pathlib.Path, entry: dict) -> Vocabulary:
  """The vocabulary file of a manifest entry {file, md5, size, fingerprint}."""
  path = directory / entry['file']
  try:
    if cache_build.file_md5(path) != entry['md5']:
      raise DamagedCache(path, 'checksum mismatch')
    vocab = Vocabulary.load(path)
  except (OSError, DataError) as e:
    raise DamagedCache(path, str(e).splitlines()[0]) from None
  if len(vocab) != entry['size'] or vocab.fingerprint != entry['fingerprint']:
    raise DamagedCache(path, 'vocabulary differs from the manifest')
  return vocab


def open_cache(directory: pathlib.Path, key: str) -> Cached:
  """The cache in `directory`; DamagedCache if anything does not check out."""
  manifest = read_manifest(directory, key)
  try:
    dtype = np.dtype(manifest['dtype'])
    streams = {s: open_ids(directory, manifest['files'][s], dtype)
               for s in SPLITS}
    vocab = open_vocab(directory, manifest['vocab'])
    fingerprint = manifest['source']['fingerprint']
    name = manifest['name']
  except (KeyError, TypeError, ValueError) as e:
    raise DamagedCache(directory / cache_build.MANIFEST,
                       f'malformed manifest ({type(e).__name__}: {e})'
                       ) from None
  if dtype != cache_build.ids_dtype(len(vocab)):
    raise DamagedCache(directory / cache_build.MANIFEST,
                       f'dtype {dtype.name} does not fit {len(vocab)} ids')
  return Cached(name, vocab, fingerprint, streams, directory)


def verify(directory: pathlib.Path) -> None:
  """Full check of every file against the manifest's md5 (reads everything)."""
  manifest = json.loads((directory / cache_build.MANIFEST).read_text())
  open_cache(directory, manifest['key'])
  for entry in manifest['files'].values():
    if cache_build.file_md5(directory / entry['file']) != entry['md5']:
      raise DamagedCache(directory / entry['file'], 'checksum mismatch')


def _publish(tmp: pathlib.Path, directory: pathlib.Path, is_good) -> None:
  """Renames the finished `tmp` to `directory`, replacing a damaged one
  (is_good(directory) raises DamagedCache for one that must not be kept)."""
  try:
    os.rename(tmp, directory)
    return
  except OSError:
    pass  # `directory` exists: damaged, or another process just built it
  try:
    is_good(directory)
    shutil.rmtree(tmp, ignore_errors=True)  # theirs is good: keep it
    return
  except DamagedCache:
    pass
  stale = directory.with_name(f'.{directory.name}.stale-{uuid.uuid4().hex[:8]}')
  os.rename(directory, stale)
  os.rename(tmp, directory)
  shutil.rmtree(stale, ignore_errors=True)


def _fill(directory: pathlib.Path, write_fn, is_good) -> None:
  """write_fn(tmp) writes a complete cache into a temporary sibling of
  `directory`, which is then published there (_publish)."""
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = directory.with_name(
      f'.{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}')
  tmp.mkdir()
  try:
    write_fn(tmp)
    _publish(tmp, directory, is_good)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename


def existing(cache_dir: str, name: str, is_good) -> tuple[pathlib.Path, bool]:
  """(the local directory of cache `name`, whether it was just downloaded):
  a remote cache_dir's cache is downloaded into the mirror when the mirror
  lacks it. The directory may not exist (nothing cached yet)."""
  directory = cache_mirror.local_root(cache_dir) / name
  if ((directory / cache_build.MANIFEST).exists()
      or not cache_mirror.has_remote(cache_dir, name)):
    return directory, False
  _fill(directory, lambda tmp: cache_mirror.download(cache_dir, name, tmp),
        is_good)
  return directory, True


def open_or_build(cache_dir: str, name: str, open_fn, build_fn, what: str):
  """open_fn(directory) of the good cache `name` in `cache_dir` (downloaded
  first from a remote cache_dir); else build_fn(tmp) writes a complete one
  into a temporary sibling, which is renamed into place, opened, and
  uploaded to a remote cache_dir.

  open_fn raises DamagedCache for a cache that must not be used: it is
  logged, naming the file, and rebuilt.
  """
  directory, downloaded = existing(cache_dir, name, open_fn)
  if directory.exists():
    try:
      cached = open_fn(directory)
      log.info('%s cache: memory-mapping %s', what, directory)
      return cached
    except DamagedCache as e:
      log.warning('%s cache damaged, rebuilding it: %s', what, e)
  log.info('%s cache: tokenizing into %s', what, directory)
  _fill(directory, build_fn, open_fn)
  cached = open_fn(directory)
  # A damaged download is replaced; a cache another process uploaded since
  # this one looked is left as it is.
  cache_mirror.upload(cache_dir, name, replace=downloaded)
  return cached


def load(source: streaming.TextSource, settings: dict, cache_dir: str,
         vocab: Vocabulary | None = None) -> Cached:
  """The cached corpus of `source`, built first when missing or damaged."""
  key = cache_key(source, settings)
  return open_or_build(
      cache_dir, f'{safe_name(source.name)}-{key}', lambda d: open_cache(d, key),
      lambda tmp: cache_build.build(source, settings, key, tmp, vocab),
      f'corpus {source.name}')
