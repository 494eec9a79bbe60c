"""The paired-corpus cache (data.cache_dir with task='seq2seq'): the same ids
with and without it, reuse, invalidation, damage, resume and SentencePiece.
A training run through the cache (crashed and resumed) equals one without it:
tests/test_translation_task.py::test_seq2seq_resume_is_exact."""

import gzip
import logging
import os

import numpy as np
import pytest

from rnnlm_jax.data import paired, paired_cache
from rnnlm_jax.data.corpus import SPLITS

SENTENCES = ['Ein Hund läuft im Park .', 'Zwei Männer spielen Fußball !',
             'Eine Frau liest ein Buch .', 'Kinder spielen im Schnee .']


def write_pairs(root, n=(40, 8, 8), extra=''):
  """Parallel gzip files {train,val,test_2016_flickr}.{de,en}.gz."""
  root.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  for stem, count in zip(('train', 'val', 'test_2016_flickr'), n):
    de, en = [], []
    for i in range(count):
      words = SENTENCES[i % 4].split()
      rng.shuffle(words)
      de.append(' '.join(words) + (extra if stem == 'train' and i == 0 else ''))
      en.append(' '.join(reversed(words)).upper() + f' {i % 7}')
    for lang, lines in (('de', de), ('en', en)):
      with gzip.open(root / f'{stem}.{lang}.gz', 'wt', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
  return root


def load(path, cache_dir='', **settings):
  return paired.load_paired('files', path=str(path), cache_dir=str(cache_dir),
                            **settings)


def assert_same(a, b):
  assert a.fingerprint == b.fingerprint
  assert a.source_vocab.tokens == b.source_vocab.tokens
  assert a.target_vocab.tokens == b.target_vocab.tokens
  for split in SPLITS:
    for side in ('source', 'target'):
      x, y = getattr(a, side)[split], getattr(b, side)[split]
      assert len(x) == len(y)
      assert all(np.array_equal(u, v) for u, v in zip(x, y))
    assert a.references[split] == b.references[split]
  assert a.truncated == b.truncated and a.dropped == b.dropped


def cache_dirs(root):
  return sorted(d for d in os.listdir(root) if not d.startswith('.'))


def forbid_encoding(monkeypatch):
  def fail(*args, **kwargs):
    raise AssertionError('tokenized again instead of using the cache')
  monkeypatch.setattr(paired, '_encode', fail)


@pytest.mark.parametrize('settings', [
    {}, dict(max_target_len=7, length_policy='drop'),
    dict(max_source_len=4, length_policy='truncate', vocab_min_count=2)])
def test_cached_ids_equal_the_plain_ones_and_are_reused(tmp_path, monkeypatch,
                                                        settings):
  data_dir = write_pairs(tmp_path / 'data')
  plain = load(data_dir, **settings)
  first = load(data_dir, tmp_path / 'c', **settings)
  assert_same(plain, first)
  assert isinstance(first.source['train'], paired_cache.RaggedIds)
  forbid_encoding(monkeypatch)
  again = load(data_dir, tmp_path / 'c', **settings)
  assert_same(plain, again)
  assert len(cache_dirs(tmp_path / 'c')) == 1
  # Slices (data.paired.max_pairs) and lengths behave as the tuple's.
  assert [len(x) for x in again.target['train'][:5]] == [
      len(x) for x in plain.target['train'][:5]]
  np.testing.assert_array_equal(again.source['valid'].lengths(),
                                [len(x) for x in plain.source['valid']])


def test_changed_source_or_setting_selects_a_new_cache(tmp_path):
  data_dir = write_pairs(tmp_path / 'data')
  load(data_dir, tmp_path / 'c')
  load(data_dir, tmp_path / 'c', vocab_min_count=2)
  assert len(cache_dirs(tmp_path / 'c')) == 2
  write_pairs(data_dir, extra=' neu')  # one training sentence changes
  changed = load(data_dir, tmp_path / 'c')
  assert len(cache_dirs(tmp_path / 'c')) == 3
  assert_same(load(data_dir), changed)
  assert 'neu' in changed.source_vocab.tokens


def _truncate(directory):
  path = directory / 'train.source.ids'
  path.write_bytes(path.read_bytes()[:-2])
  return 'train.source.ids'


def _flip(directory):
  path = directory / 'test.target.ids'
  data = bytearray(path.read_bytes())
  data[0] ^= 1
  path.write_bytes(bytes(data))
  return 'test.target.ids'


def _offsets(directory):
  path = directory / 'valid.source.offsets'
  path.unlink()
  return 'valid.source.offsets'


def _manifest(directory):
  (directory / 'manifest.json').write_text('{"format": "rnnlm_jax.paired_cache"')
  return 'manifest.json'


def _vocab(directory):
  path = directory / 'vocab.target.json'
  path.write_text(path.read_text().replace('"', "'", 1))
  return 'vocab.target.json'


@pytest.mark.parametrize('damage', [_truncate, _flip, _offsets, _manifest, _vocab])
def test_damaged_cache_is_logged_and_rebuilt(tmp_path, caplog, damage):
  data_dir = write_pairs(tmp_path / 'data')
  plain = load(data_dir)
  load(data_dir, tmp_path / 'c')
  (name,) = cache_dirs(tmp_path / 'c')
  bad = damage(tmp_path / 'c' / name)
  with caplog.at_level(logging.WARNING, logger='rnnlm_jax.data.cache'):
    rebuilt = load(data_dir, tmp_path / 'c')
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert len(warnings) == 1 and '\n' not in warnings[0], warnings
  assert str(tmp_path / 'c' / name / bad) in warnings[0]
  assert_same(plain, rebuilt)
  assert cache_dirs(tmp_path / 'c') == [name]
  caplog.clear()
  with caplog.at_level(logging.WARNING, logger='rnnlm_jax.data.cache'):
    load(data_dir, tmp_path / 'c')
  assert not caplog.records


def test_a_resume_with_the_same_vocabularies_reuses_the_cache(tmp_path, monkeypatch):
  data_dir = write_pairs(tmp_path / 'data')
  first = load(data_dir, tmp_path / 'c')
  forbid_encoding(monkeypatch)
  resumed = paired.load_paired('files', path=str(data_dir),
                               cache_dir=str(tmp_path / 'c'),
                               vocabs=(first.source_vocab, first.target_vocab))
  assert_same(first, resumed)
  assert len(cache_dirs(tmp_path / 'c')) == 1


def test_a_resume_with_other_vocabularies_gets_its_own_cache(tmp_path):
  data_dir = write_pairs(tmp_path / 'data')
  load(data_dir, tmp_path / 'c')
  other = load(data_dir, vocab_max_size=10)  # smaller vocabularies
  assert len(other.source_vocab) < len(load(data_dir).source_vocab)
  given = (other.source_vocab, other.target_vocab)
  resumed = paired.load_paired('files', path=str(data_dir),
                               cache_dir=str(tmp_path / 'c'), vocabs=given)
  plain = paired.load_paired('files', path=str(data_dir), vocabs=given)
  assert_same(plain, resumed)
  assert len(cache_dirs(tmp_path / 'c')) == 2


def test_sentencepiece_models_travel_with_the_cache(tmp_path, monkeypatch):
  data_dir = write_pairs(tmp_path / 'data', n=(200, 8, 8))
  spm = dict(tokenizer='sentencepiece', spm_vocab_size=40)
  first = load(data_dir, tmp_path / 'c', spm_dir=str(tmp_path / 'run1'), **spm)
  plain = load(data_dir, spm_dir=str(tmp_path / 'run1'), **spm)
  assert_same(plain, first)
  forbid_encoding(monkeypatch)
  second = load(data_dir, tmp_path / 'c', spm_dir=str(tmp_path / 'run2'), **spm)
  assert_same(first, second)  # a new run: the cache's models, copied
  for lang in ('de', 'en'):
    assert ((tmp_path / 'run1' / f'spm.{lang}.model').read_bytes()
            == (tmp_path / 'run2' / f'spm.{lang}.model').read_bytes())
  assert second.decode_target(second.target['test'][0]) == first.references['test'][0].lower()


def test_instruct_task_refuses_a_cache_dir():
  from rnnlm_jax import config_checks, configs  # pylint: disable=import-outside-toplevel
  c = configs.base_config()
  c.task, c.data.level, c.data.cache_dir = 'instruct', 'char', '/tmp/x'
  c.data.paired.format = 'code_instructions'
  with pytest.raises(ValueError, match='data.cache_dir'):
    config_checks.validate(c)


def test_a_remote_cache_dir_is_mirrored_and_shared(tmp_path, fake_gcs,
                                                   monkeypatch):
  data_dir = write_pairs(tmp_path / 'data')
  plain = load(data_dir)
  assert_same(plain, load(data_dir, 'gs://b/c'))
  assert any(k.endswith('/train.source.ids') for k in fake_gcs)
  monkeypatch.setenv('RNNLM_JAX_CACHE_MIRROR', str(tmp_path / 'other'))
  forbid_encoding(monkeypatch)  # another machine downloads it
  assert_same(plain, load(data_dir, 'gs://b/c'))
  assert cache_dirs(tmp_path / 'other' / os.listdir(tmp_path / 'other')[0])
