"""The SentencePiece code tokenizer keeps source text byte for byte."""

import inspect
import json

import pytest

from rnnlm_jax.data import tokenizers
from rnnlm_jax.data.errors import DataError


def _code_samples():
  return [inspect.getsource(m) for m in (json.decoder, json.encoder,
                                         tokenizers)]


def test_code_bpe_round_trips_source_exactly(tmp_path):
  tok = tokenizers.train_sentencepiece(_code_samples(), tmp_path, 'spm.code',
                                       vocab_size=600, lowercase=False,
                                       model_type='code_bpe')
  unseen = 'def f(x):\n\t"""Doc."""\n    return x  +  1  # é 中 ☃\n\n'
  for text in _code_samples() + [unseen]:
    pieces = tok.tokenize(text)
    assert tok.detokenize(pieces) == text
  pieces = tok.tokenize(unseen)
  assert '\n' in pieces and '\t' in pieces
  assert '<unk>' not in pieces  # unseen characters fall back to bytes
  assert any(p.startswith('<0x') for p in pieces)


def test_unknown_model_type_is_one_line_error(tmp_path):
  with pytest.raises(DataError, match='model_type'):
    tokenizers.train_sentencepiece(['a b'], tmp_path, 'x', 40,
                                   model_type='wordpiece')
