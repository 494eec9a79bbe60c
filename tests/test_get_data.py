"""scripts/get_data.py on small archives made here (no network in tests)."""

import gzip
import io
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import REPO_ROOT, load_script

SCRIPT = REPO_ROOT / 'scripts' / 'get_data.py'
PTB = {f'ptb.{s}.txt': f' the {s} words \n a b c \n'.encode() for s in
       ('train', 'valid', 'test')}
MULTI30K = {f'{split}.{lang}.gz': gzip.compress(f'a {split} {lang}\n'.encode())
            for split in ('train', 'val', 'test_2016_flickr') for lang in ('de', 'en')}


def make_tgz(path, files):
  with tarfile.open(path, 'w:gz') as t:
    for name, payload in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(payload)
      t.addfile(info, io.BytesIO(payload))
  return path


def make_zip(path, files):
  with zipfile.ZipFile(path, 'w') as z:
    for name, payload in files.items():
      z.writestr(name, payload)
  return path


def get_data(*args, **env):
  return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                        env=dict(os.environ, **env), cwd='/',
                        capture_output=True, text=True, timeout=60)


def test_unpacks_ptb_from_a_tgz_and_multi30k_from_a_zip(tmp_path):
  # The layouts of simple-examples.tgz and of the multi30k repository's zip,
  # plus same-prefix decoys that must not be taken for the real files.
  tgz = make_tgz(tmp_path / 'simple-examples.tgz', {
      **{f'./simple-examples/data/{n}': p for n, p in PTB.items()},
      './simple-examples/data/ptb.char.train.txt': b'decoy\n'})
  zip_ = make_zip(tmp_path / 'dataset-master.zip', {
      **{f'dataset-master/data/task1/raw/{n}': p for n, p in MULTI30K.items()},
      'dataset-master/data/task1/tok/train.lc.norm.tok.en': b'decoy\n'})
  dest = tmp_path / 'data'
  proc = get_data('ptb', 'multi30k', '--dest', dest, '--archive', tgz,
                  '--archive', zip_)
  assert proc.returncode == 0, proc.stderr
  for name, files in (('ptb', PTB), ('multi30k', MULTI30K)):
    assert sorted(p.name for p in (dest / name).iterdir()) == sorted(files)
    for file, payload in files.items():
      assert (dest / name / file).read_bytes() == payload
      assert f'wrote {dest / name / file} ({len(payload):,} bytes' in proc.stdout
  again = get_data('ptb', '--dest', dest, '--archive', tgz)
  assert again.returncode == 0 and 'ptb: already in' in again.stdout


def test_default_dest_is_the_data_root(tmp_path):
  tgz = make_tgz(tmp_path / 'ptb.tar.gz', PTB)
  proc = get_data('ptb', '--archive', tgz, RNNLM_JAX_DATA=str(tmp_path / 'root'))
  assert proc.returncode == 0, proc.stderr
  assert (tmp_path / 'root' / 'ptb' / 'ptb.valid.txt').read_bytes() == PTB['ptb.valid.txt']
  assert 'note:' not in proc.stdout


@pytest.mark.parametrize('files,message', [
    ({k: v for k, v in PTB.items() if k != 'ptb.test.txt'}, 'has no ptb.test.txt'),
    (dict(PTB, **{'ptb.valid.txt': b''}), 'ptb.valid.txt is empty'),
    (dict(PTB, **{'other/ptb.train.txt': b'x\n'}), 'ptb.train.txt is in more than one place'),
])
def test_bad_archive_is_a_one_line_error(tmp_path, files, message):
  tgz = make_tgz(tmp_path / 'bad.tgz', files)
  proc = get_data('ptb', '--dest', tmp_path / 'data', '--archive', tgz)
  assert proc.returncode == 2
  assert proc.stderr.startswith('error: ') and message in proc.stderr
  assert proc.stderr.count('\n') == 1, proc.stderr
  assert not (tmp_path / 'data' / 'ptb' / 'ptb.valid.txt').exists()


def test_a_gz_that_is_no_gzip_is_refused(tmp_path):
  zip_ = make_zip(tmp_path / 'm.zip', dict(MULTI30K, **{'val.en.gz': b'plain text\n'}))
  proc = get_data('multi30k', '--dest', tmp_path / 'data', '--archive', zip_)
  assert proc.returncode == 2 and 'val.en.gz is not a gzip file' in proc.stderr


def _load_script():
  return load_script(SCRIPT, 'get_data_script')


def test_download_path_with_file_urls(tmp_path, monkeypatch, capsys):
  # The online code path, served from file:// URLs laid out as the real sources.
  script = _load_script()
  served = tmp_path / 'served'
  make_tgz(tmp_path / 'simple-examples.tgz',
           {f'simple-examples/data/{n}': p for n, p in PTB.items()})
  served.mkdir()
  for name, payload in MULTI30K.items():
    (served / name).write_bytes(payload)
  monkeypatch.setattr(script, 'PTB_URL', (tmp_path / 'simple-examples.tgz').as_uri())
  monkeypatch.setattr(script, 'MULTI30K_URL', served.as_uri() + '/')
  assert script.main(['ptb', 'multi30k', '--dest', str(tmp_path / 'data')]) == 0
  assert (tmp_path / 'data' / 'ptb' / 'ptb.train.txt').read_bytes() == PTB['ptb.train.txt']
  assert (tmp_path / 'data' / 'multi30k' / 'val.de.gz').read_bytes() == MULTI30K['val.de.gz']
  monkeypatch.setattr(script, 'MULTI30K_URL', (tmp_path / 'nowhere').as_uri() + '/')
  assert script.main(['multi30k', '--force', '--dest', str(tmp_path / 'data')]) == 2
  err = capsys.readouterr().err
  assert err.startswith('error: cannot download') and '--archive' in err
