"""Tokenization and Vocabulary."""

import json

import numpy as np
import pytest

from rnnlm_jax.data import DataError, detokenize, tokenize, Vocabulary


def test_word_tokenize_appends_eos_per_line():
  assert tokenize(' a  b\nc\n', 'word') == ['a', 'b', '<eos>', 'c', '<eos>']
  # An unterminated last line still ends in <eos>; an empty line is one <eos>.
  assert tokenize('a\n\nb', 'word') == ['a', '<eos>', '<eos>', 'b', '<eos>']
  assert tokenize('', 'word') == []


def test_char_tokenize_keeps_newlines():
  assert tokenize('ab\nc', 'char') == ['a', 'b', '\n', 'c']


def test_lowercase():
  tokens = tokenize('The CAT\n', 'word', lowercase=True)
  assert tokens == ['the', 'cat', '<eos>']


@pytest.mark.parametrize('level', ['word', 'char'])
def test_roundtrip(level):
  text = 'the cat sat\non the mat\n\nend é ü\n'
  assert detokenize(tokenize(text, level), level) == text


def test_unknown_level():
  with pytest.raises(DataError, match='data.level'):
    tokenize('x', 'byte')


def test_build_orders_specials_then_count_then_token():
  vocab = Vocabulary.build('b a c a b a <eos> d'.split())
  # a:3, b:2, then the count-1 tokens sorted by string; <eos> not duplicated.
  assert vocab.tokens == ('<unk>', '<eos>', 'a', 'b', 'c', 'd')
  assert (vocab.unk_id, vocab.eos_id) == (0, 1)


def test_build_is_independent_of_token_order():
  tokens = 'x y z y z z w'.split()
  assert Vocabulary.build(tokens) == Vocabulary.build(tokens[::-1])


def test_build_max_size_and_min_count():
  tokens = 'a a a b b c'.split()
  assert Vocabulary.build(tokens, max_size=3).tokens == ('<unk>', '<eos>', 'a')
  assert Vocabulary.build(tokens, min_count=2).tokens == (
      '<unk>', '<eos>', 'a', 'b')


def test_char_fast_path_matches_list_path():
  text = 'héllo\nwörld 😀\n'
  from_str = Vocabulary.build(text, specials=('<unk>',))
  from_list = Vocabulary.build(list(text), specials=('<unk>',))
  assert from_str == from_list
  assert from_str.eos_id is None
  np.testing.assert_array_equal(from_str.encode(text + 'Z'),
                                from_list.encode(list(text) + ['Z']))
  assert from_str.encode('Z')[0] == from_str.unk_id


def test_encode_decode():
  vocab = Vocabulary(['<unk>', '<eos>', 'a', 'b'])
  ids = vocab.encode(['a', 'zzz', 'b', '<eos>'])
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, [2, 0, 3, 1])
  assert vocab.decode(ids) == ['a', '<unk>', 'b', '<eos>']
  assert vocab.id_of('b') == 3 and vocab.token_of(3) == 'b'
  with pytest.raises(DataError, match='outside the vocabulary'):
    vocab.token_of(4)


def test_init_requires_unk_and_unique_tokens():
  with pytest.raises(DataError, match='<unk>'):
    Vocabulary(['a', 'b'])
  with pytest.raises(DataError, match="'a'"):
    Vocabulary(['<unk>', 'a', 'a'])


def test_save_load_roundtrip(tmp_path):
  vocab = Vocabulary.build('b a c a é'.split())
  path = tmp_path / 'vocab.json'
  vocab.save(path)
  loaded = Vocabulary.load(path)
  assert loaded == vocab
  assert loaded.fingerprint == vocab.fingerprint
  assert loaded.first_difference(vocab) is None
  # vocab.json of runs written before the header: a bare token list
  path.write_text(json.dumps(list(vocab.tokens)))
  assert Vocabulary.load(path) == vocab


def test_load_bad_files(tmp_path):
  not_json = tmp_path / 'garbage.json'
  not_json.write_text('{not json')
  wrong = tmp_path / 'wrong.json'
  wrong.write_text(json.dumps({'tokens': ['<unk>']}))
  tampered = tmp_path / 'tampered.json'
  Vocabulary(['<unk>', 'a']).save(tampered)
  payload = json.loads(tampered.read_text())
  payload['tokens'].append('b')
  tampered.write_text(json.dumps(payload))
  for path in (not_json, wrong, tampered, tmp_path / 'missing.json'):
    with pytest.raises(DataError) as info:
      Vocabulary.load(path)
    assert path.name in str(info.value) and '\n' not in str(info.value)


def test_first_difference():
  a = Vocabulary(['<unk>', 'the', 'a'])
  assert a.first_difference(Vocabulary(['<unk>', 'the', 'a'])) is None
  assert a.first_difference(Vocabulary(['<unk>', 'a', 'the'])) == (
      "id 1: 'the' vs 'a'")
  assert a.first_difference(Vocabulary(['<unk>', 'the'])) == 'size 3 vs 2'
  assert a.fingerprint != Vocabulary(['<unk>', 'a', 'the']).fingerprint
