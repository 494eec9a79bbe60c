"""The corpus cache (data.cache_dir): reuse, invalidation, damage, equality."""

import json
import logging
import os

import jax
import numpy as np
import pytest

from rnnlm_jax import configs, data
from rnnlm_jax.data import cache as cache_lib
from rnnlm_jax.data import cache_build
from rnnlm_jax.data import corpus as corpus_lib
from rnnlm_jax.data import streaming
from rnnlm_jax.data.sources import files as files_source
from rnnlm_jax.data.sources import stdlib as stdlib_source
from rnnlm_jax.data.sources import tfds as tfds_source

# Blank lines, CRLF, a BOM, non-ASCII (incl. a final sigma and a dotted I for
# lowercase), whitespace-only lines and an unterminated last line.
TRAIN = ('\ufeffThe cat sat\r\non the mat\n\n  \nΟΔΟΣ İstanbul the cat\n'
         'a dog\tran  fast\nthe end') * 3
VALID = 'the Cat\nsat on a dog\n'
TEST = 'a bird\n\nthe mat\n'


def write(directory, train=TRAIN, valid=VALID, test=TEST):
  directory.mkdir(parents=True, exist_ok=True)
  for name, text in (('train.txt', train), ('valid.txt', valid),
                     ('test.txt', test)):
    (directory / name).write_bytes(text.encode('utf-8'))
  return directory


def config(path, cache_dir='', **overrides):
  d = configs.base_config().data
  d.source, d.path, d.level, d.cache_dir = 'files', str(path), 'word', str(cache_dir)
  for key, value in overrides.items():  # tfds_x -> data.tfds.x
    if key.startswith('tfds_'):
      d.tfds[key.removeprefix('tfds_')] = value
    else:
      d[key] = value
  return d


def assert_same(a, b):
  assert a.vocab == b.vocab and a.fingerprint == b.fingerprint
  assert a.name == b.name and a.level == b.level
  for s in data.SPLITS:
    np.testing.assert_array_equal(a.split(s), b.split(s))


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
  # Tiny reads and chunks: every multi-piece path runs on a few-KB corpus.
  monkeypatch.setattr(files_source, 'READ_BYTES', 7)
  monkeypatch.setattr(streaming, 'CHUNK_CHARS', 16)


def cache_dirs(root):
  return sorted(p.name for p in root.iterdir())


@pytest.mark.parametrize('overrides', [
    {}, {'level': 'char'}, {'lowercase': True}, {'vocab_min_count': 2},
    {'vocab_max_size': 6}, {'lowercase': True, 'level': 'char'},
])
def test_ids_equal_with_and_without_the_cache(tmp_path, overrides):
  path = write(tmp_path / 'text')
  plain = data.load_corpus(config(path, **overrides))
  built = data.load_corpus(config(path, tmp_path / 'c', **overrides))
  again = data.load_corpus(config(path, tmp_path / 'c', **overrides))
  assert_same(plain, built)
  assert_same(plain, again)
  assert isinstance(again.train, np.memmap) and again.train.dtype == np.uint16
  assert not again.train.flags.writeable


@pytest.mark.parametrize('level', ['word', 'char'])
@pytest.mark.parametrize('fractions', [(0.8, 0.1, 0.1), (0.5, 0.3, 0.2)])
def test_single_file_split_by_fractions(tmp_path, level, fractions):
  path = tmp_path / 'input.txt'
  path.write_bytes((TRAIN + '\n' + VALID + TEST).encode('utf-8'))
  kwargs = {'level': level, 'split_fractions': fractions}
  plain = data.load_corpus(config(path, **kwargs))
  cached = data.load_corpus(config(path, tmp_path / 'c', **kwargs))
  assert_same(plain, cached)


def test_single_file_empty_part_is_the_same_error(tmp_path):
  path = tmp_path / 'input.txt'
  path.write_text('one line only\n')
  with pytest.raises(data.DataError, match='the valid part'):
    data.load_corpus(config(path, tmp_path / 'c'))
  assert not any(p.name.startswith('input-') for p in (tmp_path / 'c').iterdir())


def test_bad_file_is_named(tmp_path):
  path = write(tmp_path / 'text')
  (path / 'valid.txt').write_bytes(b'ok line\n\xffbad\n')
  with pytest.raises(data.DataError, match=r'valid.txt is not UTF-8 .*offset 8'):
    data.load_corpus(config(path, tmp_path / 'c'))
  (path / 'valid.txt').write_bytes(b' \n\n')
  with pytest.raises(data.DataError, match='valid.txt is empty'):
    data.load_corpus(config(path, tmp_path / 'c'))


def test_caps_slice_the_mapped_streams(tmp_path):
  path = write(tmp_path / 'text')
  caps = {'max_train_tokens': 9, 'max_eval_tokens': 3}
  plain = data.load_corpus(config(path, **caps))
  cached = data.load_corpus(config(path, tmp_path / 'c', **caps))
  assert_same(plain, cached)
  assert len(cached.train) == 9
  # Caps are applied at load: capped and full runs share one cache.
  data.load_corpus(config(path, tmp_path / 'c'))
  assert len(cache_dirs(tmp_path / 'c')) == 1


def test_second_load_reads_no_text(tmp_path, monkeypatch):
  path = write(tmp_path / 'text')
  first = data.load_corpus(config(path, tmp_path / 'c'))

  def fail(*args, **kwargs):
    raise AssertionError('the text was read again')

  monkeypatch.setattr(files_source, 'iter_pieces', fail)
  monkeypatch.setattr(files_source, 'read_piece', fail)
  monkeypatch.setattr(files_source, 'read_text', fail)
  assert_same(first, data.load_corpus(config(path, tmp_path / 'c')))
  with pytest.raises(AssertionError, match='read again'):  # the patch works
    data.load_corpus(config(path, tmp_path / 'other'))


def test_changed_source_file_is_a_new_cache(tmp_path):
  path = write(tmp_path / 'text')
  data.load_corpus(config(path, tmp_path / 'c'))
  before = cache_dirs(tmp_path / 'c')
  # Same size, new content: the sampled bytes change the identity even when
  # the mtime (coarse on some file systems) does not.
  (path / 'train.txt').write_bytes(TRAIN.replace('cat', 'cow').encode('utf-8'))
  cached = data.load_corpus(config(path, tmp_path / 'c'))
  assert_same(data.load_corpus(config(path)), cached)
  assert 'cow' in cached.vocab.tokens
  assert len(cache_dirs(tmp_path / 'c')) == 2 and before[0] in cache_dirs(tmp_path / 'c')


@pytest.mark.parametrize('key, value', [
    ('lowercase', True), ('level', 'char'), ('vocab_min_count', 2),
    ('vocab_max_size', 5)])
def test_changed_setting_is_a_new_cache(tmp_path, key, value):
  path = write(tmp_path / 'text')
  data.load_corpus(config(path, tmp_path / 'c'))
  changed = data.load_corpus(config(path, tmp_path / 'c', **{key: value}))
  assert_same(data.load_corpus(config(path, **{key: value})), changed)
  assert len(cache_dirs(tmp_path / 'c')) == 2


def _damage_truncate(directory):
  p = directory / 'train.ids'
  p.write_bytes(p.read_bytes()[:-2])
  return 'train.ids'


def _damage_manifest(directory):
  (directory / 'manifest.json').write_text('{"format": "rnnlm_jax.corpus_cac')
  return 'manifest.json'


def _damage_manifest_values(directory):
  m = json.loads((directory / 'manifest.json').read_text())
  del m['files']['test']
  (directory / 'manifest.json').write_text(json.dumps(m))
  return 'manifest.json'


def _damage_flip(directory):
  m = json.loads((directory / 'manifest.json').read_text())
  offset, length, _ = m['files']['valid']['blocks'][-1]
  raw = bytearray((directory / 'valid.ids').read_bytes())
  raw[offset + length - 1] ^= 0xFF  # inside the last sampled block
  (directory / 'valid.ids').write_bytes(bytes(raw))
  return 'valid.ids'


def _damage_vocab(directory):
  v = json.loads((directory / 'vocab.json').read_text())
  v['tokens'][2], v['tokens'][3] = v['tokens'][3], v['tokens'][2]
  (directory / 'vocab.json').write_text(json.dumps(v))
  return 'vocab.json'


def _damage_missing(directory):
  os.remove(directory / 'test.ids')
  return 'test.ids'


@pytest.mark.parametrize('damage', [
    _damage_truncate, _damage_manifest, _damage_manifest_values, _damage_flip,
    _damage_vocab, _damage_missing])
def test_damaged_cache_is_logged_and_rebuilt(tmp_path, caplog, damage):
  path = write(tmp_path / 'text')
  plain = data.load_corpus(config(path))
  data.load_corpus(config(path, tmp_path / 'c'))
  (name,) = cache_dirs(tmp_path / 'c')
  bad = damage(tmp_path / 'c' / name)
  with caplog.at_level(logging.WARNING, logger='rnnlm_jax.data.cache'):
    rebuilt = data.load_corpus(config(path, tmp_path / 'c'))
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING]
  assert len(warnings) == 1 and '\n' not in warnings[0]
  assert str(tmp_path / 'c' / name / bad) in warnings[0]
  assert_same(plain, rebuilt)
  assert cache_dirs(tmp_path / 'c') == [name]  # replaced in place, no debris
  caplog.clear()
  with caplog.at_level(logging.WARNING, logger='rnnlm_jax.data.cache'):
    data.load_corpus(config(path, tmp_path / 'c'))
  assert not caplog.records  # the rebuilt cache is good
  cache_lib.verify(tmp_path / 'c' / name)


def test_killed_build_leaves_no_valid_looking_cache(tmp_path, monkeypatch):
  path = write(tmp_path / 'text')
  real = cache_build._encode_split

  def dies_at_test(source, split, *args):
    if split == 'test':
      raise KeyboardInterrupt  # as a kill in the middle of the build
    return real(source, split, *args)

  monkeypatch.setattr(cache_build, '_encode_split', dies_at_test)
  with pytest.raises(KeyboardInterrupt):
    data.load_corpus(config(path, tmp_path / 'c'))
  assert cache_dirs(tmp_path / 'c') == []
  monkeypatch.setattr(cache_build, '_encode_split', real)
  assert_same(data.load_corpus(config(path)),
              data.load_corpus(config(path, tmp_path / 'c')))


def test_given_vocab_is_part_of_the_key(tmp_path):
  path = write(tmp_path / 'text')
  other = data.load_corpus(config(path, lowercase=True)).vocab
  plain = data.load_corpus(config(path), vocab=other)
  cached = data.load_corpus(config(path, tmp_path / 'c'), vocab=other)
  assert_same(plain, cached)
  assert_same(data.load_corpus(config(path)),
              data.load_corpus(config(path, tmp_path / 'c')))
  assert len(cache_dirs(tmp_path / 'c')) == 2


def test_wide_vocab_uses_uint32(tmp_path):
  words = ' '.join(f'w{i}' for i in range(70_000))
  path = write(tmp_path / 'text', train=words + '\n', valid='w1 w69999\n')
  plain = data.load_corpus(config(path))
  cached = data.load_corpus(config(path, tmp_path / 'c'))
  assert cached.train.dtype == np.uint32
  assert_same(plain, cached)


def _no_tokenizing(monkeypatch):
  def fail(*args, **kwargs):
    raise AssertionError('tokenized again instead of downloading the cache')
  monkeypatch.setattr(cache_build, 'build', fail)


def test_a_gs_cache_dir_is_uploaded_and_downloaded_by_another_machine(
    tmp_path, fake_gcs, monkeypatch):
  path = write(tmp_path / 'text')
  plain = data.load_corpus(config(path))
  first = data.load_corpus(config(path, 'gs://bucket/cache'))
  assert_same(plain, first)
  assert str(first.train.filename).startswith(str(tmp_path / 'mirror'))
  uploaded = {k.rsplit('/', 1)[1] for k in fake_gcs}
  assert {'manifest.json', 'vocab.json', 'train.ids', 'valid.ids', 'test.ids'
          } <= uploaded
  # Another machine (an empty mirror) downloads instead of tokenizing.
  monkeypatch.setenv('RNNLM_JAX_CACHE_MIRROR', str(tmp_path / 'other'))
  _no_tokenizing(monkeypatch)
  again = data.load_corpus(config(path, 'gs://bucket/cache'))
  assert_same(plain, again)
  assert str(again.train.filename).startswith(str(tmp_path / 'other'))


def test_a_damaged_download_is_rebuilt_and_uploaded_again(tmp_path, fake_gcs,
                                                          monkeypatch, caplog):
  path = write(tmp_path / 'text')
  plain = data.load_corpus(config(path, 'gs://bucket/cache'))
  [key] = [k for k in fake_gcs if k.endswith('/train.ids')]
  good = fake_gcs[key].getvalue()
  fake_gcs[key].seek(0)
  fake_gcs[key].write(bytes([good[0] ^ 1]))
  monkeypatch.setenv('RNNLM_JAX_CACHE_MIRROR', str(tmp_path / 'other'))
  with caplog.at_level(logging.WARNING):
    again = data.load_corpus(config(path, 'gs://bucket/cache'))
  assert_same(plain, again)
  assert 'damaged' in caplog.text and 'train.ids' in caplog.text
  assert fake_gcs[key].getvalue() == good


def test_an_unreachable_remote_cache_dir_is_one_line(tmp_path, fake_gcs,
                                                     monkeypatch):
  import sys  # pylint: disable=import-outside-toplevel
  from etils.epath import backend  # pylint: disable=import-outside-toplevel

  class NoCredentials:
    def __init__(self, *args, **kwargs):
      raise PermissionError('no credentials found\nsecond line')

  registry = sys.modules['fsspec.registry']._registry
  monkeypatch.setitem(registry, 'gcs', NoCredentials)
  backend.fsspec_backend._get_filesystem.cache_clear()
  with pytest.raises(data.DataError) as e:
    data.load_corpus(config(write(tmp_path / 'text'), 'gs://bucket/cache'))
  assert "data.cache_dir='gs://bucket/cache' cannot be reached" in str(e.value)
  assert 'PermissionError: no credentials found' in str(e.value)
  assert '\n' not in str(e.value)


def test_stdlib_source_streams_the_same_corpus(tmp_path):
  root = tmp_path / 'lib'
  for i in range(12):
    (root / f'pkg{i % 3}').mkdir(parents=True, exist_ok=True)
    (root / f'pkg{i % 3}' / f'm{i}.py').write_text(f'x = {i}\n' * (i + 1)
                                                  + ('y' if i % 2 else ''))
  (root / 'bad.py').write_bytes(b'\xff\xfe')  # skipped by both
  raw = stdlib_source.load_raw(root)
  source = stdlib_source.stream_source(root)
  for s in data.SPLITS:
    assert ''.join(source.chunks(s)) == raw.texts[s]
  settings = {'level': 'char', 'lowercase': False, 'vocab_max_size': 0,
              'vocab_min_count': 1, 'given_vocab': None}
  cached = cache_lib.load(source, settings, str(tmp_path / 'c'))
  vocab, ids = corpus_lib.encode_texts(raw.texts, 'char', False, None)
  assert cached.vocab == vocab and cached.fingerprint == raw.fingerprint
  for s in data.SPLITS:
    np.testing.assert_array_equal(cached.streams[s], ids[s])


def test_tfds_source_streams_the_same_corpus(tmp_path, monkeypatch):
  examples = {'train': [{'text': b'the cat\nsat'}, {'text': 'a dog\n'}] * 5,
              'validation': [{'text': b'the dog'}], 'test': [{'text': b'a cat'}]}
  monkeypatch.setattr(tfds_source, 'read_splits',
                      lambda name, data_dir, splits: examples)
  d = config('', tmp_path / 'c', source='tfds', tfds_name='fake',
             tfds_data_dir=str(tmp_path / 'tfds'))
  plain = data.load_corpus(config('', source='tfds', tfds_name='fake',
                                  tfds_data_dir=str(tmp_path / 'tfds')))
  assert_same(plain, data.load_corpus(d))
  monkeypatch.setattr(tfds_source, 'read_splits', None)  # cached: not called
  assert_same(plain, data.load_corpus(d))


def test_batching_converts_only_what_it_returns(tmp_path):
  path = write(tmp_path / 'text')
  plain = data.load_corpus(config(path))
  cached = data.load_corpus(config(path, tmp_path / 'c'))
  for rows in (None, (1, 3)):
    for a, b in zip(data.bptt_windows(plain.train, 4, 3, rows=rows),
                    data.bptt_windows(cached.train, 4, 3, rows=rows)):
      assert b.inputs.dtype == b.targets.dtype == np.int32
      np.testing.assert_array_equal(a.inputs, b.inputs)
      np.testing.assert_array_equal(a.targets, b.targets)
  from rnnlm_jax.data import variable_bptt
  plan = [(0, 3), (3, 5), (8, 2)]
  for a, b in zip(variable_bptt.windows(plain.train, 4, plan, rows=(2, 4)),
                  variable_bptt.windows(cached.train, 4, plan, rows=(2, 4))):
    assert b.inputs.dtype == b.targets.dtype == np.int32
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
  eos = cached.boundary_id
  pairs = zip(data.sentence_batches(plain.train, eos, 2, 5, shuffle_seed=1),
              data.sentence_batches(cached.train, eos, 2, 5, shuffle_seed=1))
  for a, b in pairs:
    assert b.inputs.dtype == np.int32
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    np.testing.assert_array_equal(a.mask, b.mask)


# --- training --------------------------------------------------------------


def train_config(path, cache_dir, num_steps):
  # tests/test_train_loop.py's tiny config, on a tiny word-level text corpus.
  c = configs.base_config()
  c.data = config(path, cache_dir)
  c.model.num_layers, c.model.hidden_size, c.model.embed_size = 1, 16, 8
  c.model.dropout = c.model.dropout_output = 0.2
  c.model.unroll = 1
  c.train.batch_size, c.train.seq_len = 4, 8
  c.train.num_steps = num_steps
  c.train.optimizer, c.train.learning_rate = 'adam', 1e-2
  c.train.schedule = 'constant'
  c.train.log_every_steps = 5
  c.train.eval_every_steps = 10
  c.train.progress_bar = False
  c.eval.batch_size, c.eval.test_batch_size = 4, 4  # one eval compile
  c.generate.length = 5
  return c


def test_training_is_the_same_with_and_without_the_cache(tmp_path):
  from rnnlm_jax import metrics  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import inference, trainer  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import run_files  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  words = [f'w{i}' for i in range(15)]
  lines = lambda n: ''.join(' '.join(rng.choice(words, 7)) + '\n' for _ in range(n))
  path = write(tmp_path / 'text', lines(60), lines(12), lines(12))
  plain, cached = str(tmp_path / 'plain'), str(tmp_path / 'cached')
  r_plain = trainer.train_and_evaluate(train_config(path, '', 20), plain)
  r_cached = trainer.train_and_evaluate(train_config(path, tmp_path / 'cache', 20), cached)
  assert os.listdir(tmp_path / 'cache')  # the cached run did use the cache
  for key in ('valid_ppl', 'test_ppl', 'corpus_fingerprint', 'vocab_size'):
    assert r_plain[key] == r_cached[key], key
  losses = lambda d: [l['loss'] for l in metrics.read_jsonl(os.path.join(d, 'metrics.jsonl'))
                      if l['split'] == 'train']
  assert losses(plain) and losses(plain) == losses(cached)
  params = [jax.device_get(inference.load_trained(train_config(path, '', 20), d,
                                             'latest')[1].params)
            for d in (plain, cached)]
  for x, y in zip(*(jax.tree.leaves(p) for p in params)):
    np.testing.assert_array_equal(x, y)
  # Switching the cache on or off does not block resuming a run.
  saved = json.loads((tmp_path / 'plain' / 'config.json').read_text())
  assert run_files.config_difference(
      saved, run_files.config_dict(train_config(path, tmp_path / 'x', 20))) is None


def test_corpus_scale_script_runs(tmp_path):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from conftest import REPO_ROOT  # pylint: disable=import-outside-toplevel
  ptb = tmp_path / 'ptb'
  ptb.mkdir()
  for split, text in (('train', TRAIN), ('valid', VALID), ('test', TEST)):
    (ptb / f'ptb.{split}.txt').write_text(text * 40)
  out = subprocess.run(
      [sys.executable, str(REPO_ROOT / 'scripts' / 'corpus_scale.py'),
       '--sizes', '0', '--ptb', str(ptb), '--out', str(tmp_path / 't.md')],
      capture_output=True, text=True, check=True).stdout
  rows = [l for l in out.splitlines() if l.startswith('| 0 MB')]
  assert [r.split(' | ')[1] for r in rows] == [
      'uncached (today)', 'cache build (1st start)', 'cached start',
      'cached start + bptt pass']
  assert (tmp_path / 't.md').read_text().strip() == out.strip()


def test_only_process_0_uploads_and_a_failed_upload_is_a_warning(
    tmp_path, fake_gcs, monkeypatch, caplog):
  from rnnlm_jax.data import cache_mirror  # pylint: disable=import-outside-toplevel
  path = write(tmp_path / 'text')
  plain = data.load_corpus(config(path))
  monkeypatch.setattr(cache_mirror, '_uploads_from_this_process', lambda: False)
  assert_same(plain, data.load_corpus(config(path, 'gs://bucket/a')))
  assert not fake_gcs  # another process's job
  monkeypatch.setattr(cache_mirror, '_uploads_from_this_process', lambda: True)

  def read_only(source, target):
    raise PermissionError('403 write forbidden\nmore')

  monkeypatch.setattr(cache_mirror, '_copy', read_only)
  with caplog.at_level(logging.WARNING):
    assert_same(plain, data.load_corpus(config(path, 'gs://bucket/b')))
  assert 'could not upload' in caplog.text and '403 write forbidden' in caplog.text
