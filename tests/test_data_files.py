"""The 'files' source: PTB, directory layouts, single-file splits, errors."""

import time

import numpy as np
import pytest

from rnnlm_jax import configs
from rnnlm_jax.data import DataError, load_corpus


def files_config(path, level='word', **overrides):
  data = configs.base_config().data
  data.source, data.path, data.level = 'files', str(path), level
  for key, value in overrides.items():
    data[key] = value
  return data


@pytest.fixture(scope='module')
def ptb(ptb_dir):
  start = time.perf_counter()
  corpus = load_corpus(files_config(ptb_dir))
  print(f'PTB loaded in {time.perf_counter() - start:.2f}s')
  return corpus


def test_ptb_counts(ptb):
  assert ptb.name == 'ptb' and ptb.level == 'word'
  assert [len(ptb.split(s)) for s in ('train', 'valid', 'test')] == [
      929_589, 73_760, 82_430]
  assert len(ptb.vocab) == 10_000
  assert ptb.vocab.tokens[:3] == ('<unk>', '<eos>', 'the')
  for split in ('train', 'valid', 'test'):
    ids = ptb.split(split)
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < 10_000
  # PTB is closed-vocabulary: valid/test have no tokens outside train's.
  assert ptb.vocab.decode(ptb.valid[:5]) == ['consumers', 'may', 'want', 'to',
                                             'move']


def test_ptb_streams_are_frozen(ptb):
  with pytest.raises(ValueError):
    ptb.train[0] = 1
  with pytest.raises(DataError, match='split'):
    ptb.split('dev')


def test_ptb_reload_with_vocab_is_identical(ptb, ptb_dir):
  again = load_corpus(files_config(ptb_dir, max_train_tokens=1000,
                                   max_eval_tokens=500), vocab=ptb.vocab)
  assert again.vocab is ptb.vocab and again.fingerprint == ptb.fingerprint
  np.testing.assert_array_equal(again.train, ptb.train[:1000])
  assert len(again.valid) == len(again.test) == 500


def write_splits(directory, names, text='a b\nc\n'):
  directory.mkdir(exist_ok=True)
  for name in names:
    (directory / name).write_text(text)
  return directory


@pytest.mark.parametrize('names', [
    ('train.txt', 'valid.txt', 'test.txt'),
    ('wiki.train.tokens', 'wiki.dev.tokens', 'wiki.test.tokens'),
    ('x.train', 'x.val', 'x.test'),
])
def test_directory_layouts(tmp_path, names):
  corpus = load_corpus(files_config(write_splits(tmp_path / 'd', names)))
  assert len(corpus.train) == len(corpus.valid) == len(corpus.test) == 5


def assert_one_line_error(config, *fragments):
  with pytest.raises(DataError) as info:
    load_corpus(config)
  message = str(info.value)
  assert '\n' not in message, message
  for fragment in fragments:
    assert fragment in message, message


def test_missing_path(tmp_path):
  assert_one_line_error(files_config(tmp_path / 'nope'), 'nope',
                        'does not exist')
  assert_one_line_error(files_config(''), 'data.path')


def test_missing_split(tmp_path):
  d = write_splits(tmp_path / 'd', ['train.txt', 'test.txt', 'README'])
  assert_one_line_error(files_config(d), 'valid split', 'train.txt',
                        'README')


def test_ambiguous_split(tmp_path):
  d = write_splits(tmp_path / 'd', ['ptb.train.txt', 'ptb.char.train.txt',
                                    'ptb.valid.txt', 'ptb.test.txt'])
  assert_one_line_error(files_config(d), 'train split', 'ptb.char.train.txt')


def test_empty_file(tmp_path):
  d = write_splits(tmp_path / 'd', ['train.txt', 'valid.txt'])
  (d / 'test.txt').write_text('  \n')
  assert_one_line_error(files_config(d), 'test.txt', 'empty')


def test_non_utf8_file(tmp_path):
  d = write_splits(tmp_path / 'd', ['train.txt', 'test.txt'])
  (d / 'valid.txt').write_bytes('café\n'.encode('latin-1'))
  assert_one_line_error(files_config(d), 'valid.txt', 'not UTF-8',
                        'byte offset 3')


def test_binary_file(tmp_path):
  d = write_splits(tmp_path / 'd', ['valid.txt', 'test.txt'])
  (d / 'train.txt').write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00')
  assert_one_line_error(files_config(d), 'train.txt', 'binary',
                        'byte offset 8')


def test_single_file_split_by_fractions(tmp_path):
  lines = [f'line {i} of the play' for i in range(100)]
  path = tmp_path / 'input.txt'
  path.write_text('\n'.join(lines) + '\n')
  corpus = load_corpus(files_config(path, level='char',
                                    split_fractions=(0.8, 0.1, 0.1)))
  assert corpus.name == 'input'
  texts = [''.join(corpus.vocab.decode(corpus.split(s)))
           for s in ('train', 'valid', 'test')]
  # Contiguous, complete, cut at line starts, roughly 80/10/10.
  assert ''.join(texts) == path.read_text()
  assert all(t.endswith('\n') for t in texts)
  sizes = np.array([len(t) for t in texts]) / len(path.read_text())
  np.testing.assert_allclose(sizes, [0.8, 0.1, 0.1], atol=0.02)
  other = load_corpus(files_config(path, level='char',
                                   split_fractions=(0.7, 0.2, 0.1)))
  assert other.fingerprint != corpus.fingerprint


def test_bad_fractions(tmp_path):
  path = tmp_path / 'input.txt'
  path.write_text('a\nb\nc\n')
  assert_one_line_error(files_config(path, split_fractions=(0.9, 0.2, 0.1)),
                        'data.split_fractions')
