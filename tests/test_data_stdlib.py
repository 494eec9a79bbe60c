"""The embedded 'stdlib' corpus."""

import time

import numpy as np
import pytest

from rnnlm_jax import configs
from rnnlm_jax.data import load_corpus
from rnnlm_jax.data.sources import stdlib


@pytest.fixture(scope='module')
def corpus():
  start = time.perf_counter()
  loaded = load_corpus(configs.base_config().data)  # the default source
  print(f'stdlib loaded in {time.perf_counter() - start:.2f}s')
  return loaded


def test_default_config_is_stdlib_char(corpus):
  assert corpus.name == 'stdlib' and corpus.level == 'char'
  assert corpus.vocab.eos_id is None and '\n' in corpus.vocab.tokens
  assert corpus.boundary_id == corpus.vocab.id_of('\n')


def test_splits_nonempty_and_roughly_90_5_5(corpus):
  sizes = np.array([len(corpus.split(s)) for s in ('train', 'valid', 'test')])
  assert sizes.min() > 100_000
  # Files, not characters, are split 90/5/5.
  assert sizes[0] / sizes.sum() > 0.75


def test_deterministic(corpus):
  again = load_corpus(configs.base_config().data)
  assert again.fingerprint == corpus.fingerprint
  assert again.vocab == corpus.vocab
  for split in ('train', 'valid', 'test'):
    np.testing.assert_array_equal(again.split(split), corpus.split(split))


def test_text_is_python_source(corpus):
  text = ''.join(corpus.vocab.decode(corpus.train[:20_000]))
  assert 'def ' in text and 'import ' in text
  assert stdlib.SEPARATOR in text


def test_file_selection_excludes_tests_and_third_party():
  rels = stdlib.list_files(stdlib.stdlib_root())
  assert rels == sorted(rels) and len(rels) > 300
  assert 'os.py' in rels and 'json/decoder.py' in rels
  for rel in rels:
    parts = rel.split('/')
    assert not {'test', 'tests', 'idle_test', 'site-packages',
                'dist-packages'} & set(parts[:-1]), rel
    assert rel.endswith('.py')


def test_split_by_path_hash_is_stable():
  splits = [stdlib.split_of(f'mod{i}.py') for i in range(2000)]
  assert splits == [stdlib.split_of(f'mod{i}.py') for i in range(2000)]
  fractions = [splits.count(s) / 2000 for s in ('train', 'valid', 'test')]
  np.testing.assert_allclose(fractions, [0.9, 0.05, 0.05], atol=0.02)


def test_loads_a_custom_root_and_skips_undecodable(tmp_path):
  (tmp_path / 'a.py').write_text('x = 1\n')
  (tmp_path / 'bad.py').write_bytes(b'\xff\xfe\n')
  (tmp_path / 'tests').mkdir()
  (tmp_path / 'tests' / 'test_a.py').write_text('assert False\n')
  raw = stdlib.load_raw(tmp_path)
  assert ''.join(raw.texts.values()) == 'x = 1\n'
