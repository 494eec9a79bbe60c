"""load_corpus config handling shared by all sources."""

import sys

import numpy as np
import pytest

from rnnlm_jax import configs
from rnnlm_jax.data import DataError, load_corpus


def test_no_jax_or_tfds_import():
  # The data package must stay numpy-only; run in a fresh interpreter because
  # other tests import jax and tfds into this one.
  import subprocess  # pylint: disable=g-import-not-at-top
  code = ('import sys, rnnlm_jax.data; '
          "print(sorted(m for m in ('jax', 'flax', 'tensorflow_datasets', "
          "'tensorflow') if m in sys.modules))")
  out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, check=True).stdout
  assert out.strip() == '[]'


@pytest.mark.parametrize('key, value', [
    ('source', 'foo'), ('level', 'byte'), ('mode', 'bucket'),
    ('vocab_max_size', -1), ('max_train_tokens', -5), ('vocab_min_count', 0),
])
def test_bad_config_values_name_the_key(key, value):
  data = configs.base_config().data
  data[key] = value
  with pytest.raises(DataError, match=f'data.{key}='):
    load_corpus(data)


@pytest.fixture
def text_dir(tmp_path):
  (tmp_path / 'train.txt').write_text('The cat\nthe dog\nA cat\n')
  (tmp_path / 'valid.txt').write_text('the Cat\n')
  (tmp_path / 'test.txt').write_text('a bird\n')
  return tmp_path


def files_config(path, **overrides):
  data = configs.base_config().data
  data.source, data.path, data.level = 'files', str(path), 'word'
  for key, value in overrides.items():
    data[key] = value
  return data


def test_lowercase(text_dir):
  cased = load_corpus(files_config(text_dir))
  lower = load_corpus(files_config(text_dir, lowercase=True))
  assert 'The' in cased.vocab.tokens and 'The' not in lower.vocab.tokens
  assert lower.vocab.decode(lower.valid) == ['the', 'cat', '<eos>']


def test_vocab_options(text_dir):
  corpus = load_corpus(files_config(text_dir, lowercase=True,
                                    vocab_min_count=2))
  assert corpus.vocab.tokens == ('<unk>', '<eos>', 'cat', 'the')
  assert corpus.vocab.decode(corpus.test) == ['<unk>', '<unk>', '<eos>']
  small = load_corpus(files_config(text_dir, vocab_max_size=3))
  assert len(small.vocab) == 3


def test_caps_truncate_after_building_vocab(text_dir):
  full = load_corpus(files_config(text_dir))
  capped = load_corpus(files_config(text_dir, max_train_tokens=4,
                                    max_eval_tokens=2))
  assert capped.vocab == full.vocab
  np.testing.assert_array_equal(capped.train, full.train[:4])
  np.testing.assert_array_equal(capped.test, full.test[:2])


def test_given_vocab_is_used(text_dir):
  other = load_corpus(files_config(text_dir, lowercase=True)).vocab
  corpus = load_corpus(files_config(text_dir), vocab=other)
  assert corpus.vocab is other
  # 'The' and 'A' are not in the lowercase vocabulary: <unk>.
  assert corpus.vocab.decode(corpus.train[:3]) == ['<unk>', 'cat', '<eos>']


def test_sentence_mode_boundary(text_dir):
  corpus = load_corpus(files_config(text_dir, mode='sentence'))
  assert corpus.boundary_id == corpus.vocab.eos_id
