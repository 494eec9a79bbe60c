"""A data.cache_dir in object storage (gs://, s3://, ...): the caches are
memory-mapped from a local mirror of it.

np.memmap needs a local file, so a remote cache directory is mirrored under
$RNNLM_JAX_CACHE_MIRROR (default ~/.cache/rnnlm_jax/cache_mirror), one
folder per remote URL. A cache the mirror lacks is downloaded when the remote
directory has one (streamed in blocks into a temporary folder, published as a
local build is: data/cache.py); a cache built here is uploaded by process 0
only, the manifest last, so a reader never takes a half-uploaded cache for a
complete one. Every host mirrors for itself. The mirror's caches get the
same checks as local ones: a damaged download is logged, rebuilt and
uploaded over the damaged remote copy.
"""

import hashlib
import logging
import os
import pathlib
import shutil
import sys

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
                   f'({type(error).__name__}: {first})')


def has_remote(cache_dir: str, name: str) -> bool:
  """Whether a remote cache_dir holds a complete cache `name` (one with a
  manifest); False for a local cache_dir."""
  if not is_remote(cache_dir):
    return False
  try:
    return (epath.Path(cache_dir) / name / cache_build.MANIFEST).exists()
  except Exception as e:  # pylint: disable=broad-except
    raise _unreachable(cache_dir, e) from None


def download(cache_dir: str, name: str, target: pathlib.Path) -> None:
  """Copies <cache_dir>/<name>/* into the empty local folder `target`, the
  manifest last."""
  remote = epath.Path(cache_dir) / name
  log.info('cache: downloading %s', remote)
  try:
    files = sorted(remote.iterdir(), key=lambda p: p.name == cache_build.MANIFEST)
    for path in files:
      _copy(path, target / path.name)
  except Exception as e:  # pylint: disable=broad-except
    raise _unreachable(cache_dir, e) from None


def _uploads_from_this_process() -> bool:
  """One uploader per run: process 0 of a multi-host JAX run (data code does
  not import jax; when the trainer has, its process index decides)."""
  jax = sys.modules.get('jax')
  return jax is None or jax.process_index() == 0


def upload(cache_dir: str, name: str, replace: bool) -> None:
  """Copies the mirror's <name> to <cache_dir>/<name>, the manifest last
  (the old one removed first, so the cache never looks complete while it
  changes). replace=False leaves a complete remote cache as it is (another
  process uploaded it meanwhile). A failed upload is a warning: this run has
  its cache. Local cache_dir: nothing."""
  if not is_remote(cache_dir) or not _uploads_from_this_process():
    return
  local = local_root(cache_dir) / name
  remote = epath.Path(cache_dir) / name
  try:
    manifest = remote / cache_build.MANIFEST
    if manifest.exists():
      if not replace:
        return
      manifest.unlink()
    log.info('cache: uploading %s to %s', local, remote)
    remote.mkdir(parents=True, exist_ok=True)
    files = sorted(local.iterdir(), key=lambda p: p.name == cache_build.MANIFEST)
    for path in files:
      _copy(path, remote / path.name)
  except Exception as e:  # pylint: disable=broad-except
    log.warning('cache: could not upload %s to %s (%s: %s); this run uses '
                'its local copy', local, remote, type(e).__name__,
                str(e).splitlines()[0] if str(e) else '')
