"""data.level='code_bpe': LM corpora of SentencePiece pieces for code."""

import inspect
import json
import os
import shlex
import textwrap

import numpy as np
import pytest

from rnnlm_jax import configs
from rnnlm_jax.data import DataError, detokenize, load_corpus, piece_corpus
from rnnlm_jax.data.text import EOS, UNK


@pytest.fixture(scope='module')
def code_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('code_text')
  # Real code with tabs-free indentation, blank lines and non-ASCII (via
  # the ü below): a byte-exact round trip is the point.
  train = inspect.getsource(textwrap) + '\n# Grüße\n'
  (root / 'train.txt').write_text(train)
  (root / 'valid.txt').write_text(inspect.getsource(json.dumps) + '\tx = "é"\n')
  (root / 'test.txt').write_text(inspect.getsource(shlex.split))
  return root


def code_data(path, **overrides):
  data = configs.base_config().data
  data.source, data.path, data.level = 'files', str(path), 'code_bpe'
  data.spm_vocab_size = 400
  for key, value in overrides.items():
    data[key] = value
  return data


def _texts(code_dir):
  return {s: (code_dir / f'{s}.txt').read_text()
          for s in ('train', 'valid', 'test')}


def test_trains_saves_and_round_trips(code_dir, tmp_path):
  corpus = load_corpus(code_data(code_dir), spm_dir=tmp_path)
  assert corpus.level == 'code_bpe'
  for name in ('spm.model', 'spm.vocab', 'spm.json'):
    assert (tmp_path / name).is_file(), name
  assert corpus.vocab.tokens[:2] == (UNK, EOS)
  assert '\n' in corpus.vocab.tokens
  tokenizer = piece_corpus.load_tokenizer(tmp_path)
  for split, text in _texts(code_dir).items():
    ids = corpus.split(split)
    assert EOS not in corpus.vocab.decode(ids)  # no '<eos>' per line
    assert detokenize(corpus.vocab.decode(ids), 'code_bpe') == text
    assert tokenizer.detokenize(corpus.vocab.decode(ids)) == text
  # Fewer ids than characters: pieces, not characters.
  assert len(corpus.train) < 0.8 * len(_texts(code_dir)['train'])


def test_reloads_the_saved_model_with_identical_ids(code_dir, tmp_path):
  first = load_corpus(code_data(code_dir), spm_dir=tmp_path)
  stamp = (tmp_path / 'spm.model').stat().st_mtime_ns
  again = load_corpus(code_data(code_dir), spm_dir=tmp_path)
  assert (tmp_path / 'spm.model').stat().st_mtime_ns == stamp  # not retrained
  for split in ('train', 'valid', 'test'):
    np.testing.assert_array_equal(first.split(split), again.split(split))
  assert first.fingerprint == again.fingerprint
  with pytest.raises(DataError, match='trained with other settings'):
    load_corpus(code_data(code_dir, spm_vocab_size=300), spm_dir=tmp_path)


def test_chunked_encoding_equals_whole_text(code_dir, tmp_path):
  corpus = load_corpus(code_data(code_dir), spm_dir=tmp_path)
  tokenizer = piece_corpus.load_tokenizer(tmp_path)
  text = _texts(code_dir)['train'] * 3
  whole = corpus.vocab.encode(tokenizer.tokenize(text))
  original = piece_corpus._ENCODE_CHUNK_CHARS
  try:
    piece_corpus._ENCODE_CHUNK_CHARS = 500
    chunked = piece_corpus.encode(text, tokenizer, corpus.vocab)
  finally:
    piece_corpus._ENCODE_CHUNK_CHARS = original
  np.testing.assert_array_equal(whole, chunked)


def test_chunks_and_training_sentences():
  text = 'a\nbb\n' + 'c' * 30 + '\nd'
  chunks = piece_corpus._chunks(text, 8)
  assert ''.join(chunks) == text and chunks[0] == 'a\nbb\n'
  raw = piece_corpus.RawCorpus('stdlib', {'train': 'x\n# ==\ny\n'}, 'f')
  assert len(piece_corpus.training_sentences(raw)) == 1
  many = piece_corpus.RawCorpus('files', {'train': 'line\n' * 1000}, 'f')
  capped = piece_corpus.training_sentences(many, max_chars=1000)
  assert 0 < sum(map(len, capped)) <= 1000 + piece_corpus.MAX_SENTENCE_CHARS


@pytest.mark.parametrize('overrides, spm_dir, message', [
    ({}, None, 'spm_dir=workdir'),
    ({'cache_dir': '/tmp/x'}, 'd', "cache_dir=''"),
    ({'lowercase': True}, 'd', 'data.lowercase=False'),
    ({'source': 'synthetic'}, 'd', 'needs a text source'),
])
def test_misuse_is_one_line(code_dir, tmp_path, overrides, spm_dir, message):
  with pytest.raises(DataError, match=message):
    load_corpus(code_data(code_dir, **overrides),
                spm_dir=spm_dir and str(tmp_path))


def test_a_short_run_trains_samples_and_resumes(code_dir, tmp_path):
  import rnnlm_jax  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import run_files, trainer  # pylint: disable=import-outside-toplevel
  from tests.test_train_loop import tiny_config  # pylint: disable=import-outside-toplevel
  config = tiny_config(num_steps=10)
  config.data = code_data(code_dir)
  config.train.eval_every_steps = 10
  workdir = str(tmp_path / 'run')
  results = trainer.train_and_evaluate(config, workdir)
  assert results['level'] == 'code_bpe' and results['steps'] == 10
  assert np.isfinite(results['test_loss'])
  saved = run_files.load_vocab(workdir)
  tokenizer = run_files.load_tokenizer(workdir)
  assert saved.tokens == piece_corpus.vocabulary(tokenizer).tokens
  assert os.path.getsize(os.path.join(workdir, 'samples.txt')) > 0
  run = rnnlm_jax.load(workdir)
  scored = run.score((code_dir / 'test.txt').read_text())
  assert scored['tokens'] == results['test_tokens']
  np.testing.assert_allclose(scored['loss'], results['test_loss'], rtol=1e-4)
  sample = run.generate('def wrap(text):\n', length=8, seed=1)
  assert sample.startswith('def wrap(text):\n') and len(sample) > 17
  assert run.generate('', length=4)  # starts from '\n'
  config.train.num_steps = 20  # resume: the saved model and vocab are reused
  resumed = trainer.train_and_evaluate(config, workdir)
  assert resumed['steps'] == 20
  assert resumed['corpus_fingerprint'] == results['corpus_fingerprint']
