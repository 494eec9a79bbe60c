r"""Fetch the real datasets into the data root (standard library only).

  python scripts/get_data.py ptb multi30k                 # download
  python scripts/get_data.py ptb --archive simple-examples.tgz   # offline
  python scripts/get_data.py multi30k --archive dataset-master.zip --dest /data

Writes <dest>/ptb/ptb.{train,valid,test}.txt and
<dest>/multi30k/{train,val,test_2016_flickr}.{de,en}.gz; <dest> defaults to
the data root the configs and tests read (rnnlm_jax/data/paths.py:
$RNNLM_JAX_DATA, else ../shared/data beside the checkout, else
~/.cache/rnnlm_jax/data).

Online, PTB comes from Mikolov's simple-examples tarball (its
data/ptb.*.txt) and Multi30k task 1 from the raw gzip files of the
multi30k/dataset repository. Offline, --archive takes a local .tgz/.tar.gz/.zip
(repeatable) and each needed file is found by name anywhere inside it. A
dataset whose files are all present is left alone unless --force. Every file
written is checked to be non-empty (and a gzip file for .gz) and printed with
its size and whether its MD5 matches the published copy.
"""

import argparse
import gzip
import hashlib
import os
import pathlib
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from rnnlm_jax.data import paths  # noqa: E402  pylint: disable=wrong-import-position

PTB_URL = 'http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz'
MULTI30K_URL = 'https://github.com/multi30k/dataset/raw/master/data/task1/raw/'

# file -> MD5 of the published copy (a mismatch is reported, not refused: a
# re-compressed .gz holds the same text with other bytes).
FILES = {
    'ptb': {
        'ptb.train.txt': 'f26c4b92c5fdc7b3f8c7cdcb991d8420',
        'ptb.valid.txt': 'aa0affc06ff7c36e977d7cd49e3839bf',
        'ptb.test.txt': '8b80168b89c18661a38ef683c0dc3721',
    },
    'multi30k': {
        'train.de.gz': '81ff90b99829c0cd4b1b587d394afd39',
        'train.en.gz': '0065d13af80720a55ca8153d126e6627',
        'val.de.gz': '6e0e229eb049e3fc99a1ef02fb2d5f91',
        'val.en.gz': '2b69aa9253948ac9f67e94917272dd40',
        'test_2016_flickr.de.gz': 'efd67d314d98489b716b145475101932',
        'test_2016_flickr.en.gz': 'ff2c0fcb4893a13bd73414306bc250ae',
    },
}


class GetDataError(Exception):
  """A one-line problem with an archive, a download or a written file."""


def _md5(path: pathlib.Path) -> str:
  digest = hashlib.md5()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _write(source, target: pathlib.Path, origin: str) -> str:
  """Copies the file object `source` to `target` atomically; checks it."""
  target.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.NamedTemporaryFile(dir=target.parent, delete=False,
                                   prefix=f'.{target.name}.') as tmp:
    shutil.copyfileobj(source, tmp)
  tmp_path = pathlib.Path(tmp.name)
  try:
    size = tmp_path.stat().st_size
    if size == 0:
      raise GetDataError(f'{origin} is empty')
    if target.suffix == '.gz':
      with open(tmp_path, 'rb') as f:
        if f.read(2) != b'\x1f\x8b':
          raise GetDataError(f'{origin} is not a gzip file')
      with gzip.open(tmp_path) as f:
        f.read(1)  # a corrupt header fails here, not in the data loader
    os.replace(tmp_path, target)
  finally:
    tmp_path.unlink(missing_ok=True)
  known = FILES[target.parent.name].get(target.name)
  digest = _md5(target)
  check = 'md5 ok' if digest == known else f'md5 {digest}, published {known}'
  return f'wrote {target} ({size:,} bytes, {check})'


class _Archive:
  """A local tar or zip archive: its regular files by path, readable by path."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    if not path.is_file():
      raise GetDataError(f'archive {path} does not exist')
    if zipfile.is_zipfile(path):
      z = zipfile.ZipFile(path)
      self.names = [i.filename for i in z.infolist() if not i.is_dir()]
      self.open, self.close = z.open, z.close
    elif tarfile.is_tarfile(path):
      t = tarfile.open(path)
      self.names = [m.name for m in t.getmembers() if m.isfile()]
      self.open, self.close = t.extractfile, t.close
    else:
      raise GetDataError(f'{path} is neither a tar (.tgz, .tar.gz) nor a zip '
                         'archive')

  def find(self, base: str) -> list[str]:
    return [n for n in self.names
            if n.replace('\\', '/').rsplit('/', 1)[-1] == base]


def from_archives(name: str, archives, folder: pathlib.Path) -> list[str]:
  """Finds each of dataset `name`'s files by name inside `archives`."""
  opened = [_Archive(a) for a in archives]
  try:
    return _unpack(name, opened, folder)
  finally:
    for archive in opened:
      archive.close()


def _unpack(name: str, opened, folder: pathlib.Path) -> list[str]:
  found, missing = {}, []
  for base in FILES[name]:
    hits = [(a, inner) for a in opened for inner in a.find(base)]
    if len(hits) > 1:
      where = ', '.join(f'{a.path}:{inner}' for a, inner in hits)
      raise GetDataError(f'{base} is in more than one place ({where}); pass an '
                         'archive holding one copy')
    if hits:
      found[base] = hits[0]
    else:
      missing.append(base)
  if missing:
    where = ', '.join(str(a.path) for a in opened)
    raise GetDataError(f'{where} has no {", ".join(missing)} (needed for '
                       f'{name}; looked in every folder of the archive)')
  lines = []
  for base, (archive, inner) in found.items():
    with archive.open(inner) as source:
      lines.append(_write(source, folder / base, f'{archive.path}:{inner}'))
  return lines


def _download(url: str, target: pathlib.Path) -> None:
  print(f'downloading {url}', flush=True)
  try:
    with urllib.request.urlopen(url, timeout=60) as response, \
        open(target, 'wb') as out:
      shutil.copyfileobj(response, out)
  except (urllib.error.URLError, OSError) as e:
    reason = getattr(e, 'reason', e)
    raise GetDataError(f'cannot download {url}: {reason}; offline, pass '
                       '--archive with a local copy') from None


def download(name: str, folder: pathlib.Path) -> list[str]:
  with tempfile.TemporaryDirectory(prefix='get_data_') as tmp:
    tmp = pathlib.Path(tmp)
    if name == 'ptb':
      _download(PTB_URL, tmp / 'simple-examples.tgz')
      return from_archives(name, [tmp / 'simple-examples.tgz'], folder)
    lines = []
    for file in FILES[name]:
      _download(MULTI30K_URL + file, tmp / file)
      with open(tmp / file, 'rb') as source:
        lines.append(_write(source, folder / file, MULTI30K_URL + file))
    return lines


def _complete(folder: pathlib.Path, name: str) -> bool:
  return all((folder / f).is_file() and (folder / f).stat().st_size > 0
             for f in FILES[name])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('datasets', nargs='+', choices=sorted(FILES))
  parser.add_argument('--dest', type=pathlib.Path, default=None,
                      help='data root to write into (default: the one the '
                      f'configs read, now {paths.data_root()})')
  parser.add_argument('--archive', type=pathlib.Path, action='append',
                      default=[], help='local .tgz/.tar.gz/.zip to unpack '
                      'instead of downloading (repeatable)')
  parser.add_argument('--force', action='store_true',
                      help='fetch again even if the files are there')
  args = parser.parse_args(argv)
  dest = (args.dest or pathlib.Path(paths.data_root())).expanduser().resolve()
  try:
    for name in dict.fromkeys(args.datasets):
      folder = dest / name
      if _complete(folder, name) and not args.force:
        print(f'{name}: already in {folder} (--force fetches it again)')
        continue
      lines = (from_archives(name, args.archive, folder) if args.archive
               else download(name, folder))
      print('\n'.join(lines))
  except GetDataError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if dest != pathlib.Path(paths.data_root()).resolve():
    print(f'note: configs read {paths.data_root()}; set {paths.ENV_VAR}={dest} '
          'or pass --config.data.path')
  return 0


if __name__ == '__main__':
  sys.exit(main())
