"""A data.cache_dir in object storage (gs://, s3://, ...): the caches are
memory-mapped from a local mirror of it.

np.memmap needs a local file, so a remote cache directory is mirrored under
$RNNLM_JAX_CACHE_MIRROR (default ~/.cache/rnnlm_jax/cache_mirror), one
folder per remote URL. A cache the mirror lacks is downloaded when the remote
directory has one (streamed in blocks, the manifest last, renamed into place
when complete); a cache built here is uploaded (the manifest last, so a
reader never takes a half-uploaded cache for a complete one). Every host of a
multi-host run mirrors for itself. The mirror's caches get the same checks as
local ones: a damaged download is logged, rebuilt and uploaded again.
"""

import hashlib
import logging
import os
import pathlib
import shutil
import uuid

from etils import epath

from rnnlm_jax.data import cache_build
from rnnlm_jax.data.errors import DataError

log = logging.getLogger(__name__)

MIRROR_ENV = 'RNNLM_JAX_CACHE_MIRROR'
_BLOCK = 16 << 20  # bytes per read while copying: memory stays bounded


def is_remote(cache_dir: str) -> bool:
  return '://' in cache_dir


def local_root(cache_dir: str) -> pathlib.Path:
  """The local directory caches of `cache_dir` are memory-mapped from."""
  if not is_remote(cache_dir):
    return pathlib.Path(os.path.expanduser(cache_dir))
  base = os.environ.get(MIRROR_ENV) or '~/.cache/rnnlm_jax/cache_mirror'
  url = cache_dir.rstrip('/')
  readable = ''.join(c if c.isalnum() or c in '-_.' else '_'
                     for c in url.split('://', 1)[1])[-60:]
  digest = hashlib.md5(url.encode()).hexdigest()[:8]
  return pathlib.Path(os.path.expanduser(base)) / f'{readable}-{digest}'


def _copy(source, target) -> None:
  """Streams one file between any two epath / pathlib paths."""
  with source.open('rb') as src, target.open('wb') as dst:
    shutil.copyfileobj(src, dst, _BLOCK)


def _unreachable(cache_dir: str, error: Exception) -> DataError:
  first = str(error).splitlines()[0] if str(error) else ''
  return DataError(f'data.cache_dir={cache_dir!r} cannot be reached '
                   f'({type(error).__name__}: {first}); gs:// without '
                   'TensorFlow needs gcsfs installed')


def fetch(cache_dir: str, name: str) -> None:
  """Downloads <cache_dir>/<name> into the mirror if the remote has a
  complete cache there and the mirror does not. Local cache_dir: nothing."""
  if not is_remote(cache_dir):
    return
  local = local_root(cache_dir) / name
  if (local / cache_build.MANIFEST).exists():
    return
  remote = epath.Path(cache_dir) / name
  try:
    if not (remote / cache_build.MANIFEST).exists():
      return
    log.info('cache: downloading %s into %s', remote, local)
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f'.{name}.download-{os.getpid()}-{uuid.uuid4().hex[:8]}')
    tmp.mkdir()
    try:
      files = sorted(remote.iterdir(), key=lambda p: p.name == cache_build.MANIFEST)
      for path in files:  # the manifest last
        _copy(path, tmp / path.name)
      if local.exists():  # a folder without a manifest: an older failed copy
        shutil.rmtree(local)
      os.rename(tmp, local)
    finally:
      shutil.rmtree(tmp, ignore_errors=True)
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise _unreachable(cache_dir, e) from None


def upload(cache_dir: str, name: str) -> None:
  """Copies the mirror's <name> to <cache_dir>/<name> (replacing what is
  there: it was missing or damaged). Local cache_dir: nothing."""
  if not is_remote(cache_dir):
    return
  local = local_root(cache_dir) / name
  remote = epath.Path(cache_dir) / name
  log.info('cache: uploading %s to %s', local, remote)
  try:
    remote.mkdir(parents=True, exist_ok=True)
    manifest = remote / cache_build.MANIFEST
    if manifest.exists():  # first, so the old cache stops looking complete
      manifest.unlink()
    files = sorted(local.iterdir(), key=lambda p: p.name == cache_build.MANIFEST)
    for path in files:
      _copy(path, remote / path.name)
  except Exception as e:  # pylint: disable=broad-except
    raise _unreachable(cache_dir, e) from None
