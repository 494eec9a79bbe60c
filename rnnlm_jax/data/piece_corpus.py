"""Language-model corpora at SentencePiece level (data.level='code_bpe').

A code_bpe SentencePiece model (tokenizers.py: BPE, byte fallback, every
space, tab and newline kept) is trained on the train split's text and saved
in the run's workdir as `spm.model` (+ `spm.vocab`, and `spm.json`, the
training record that makes a resume with other data an error); a resumed run
(or a later task starting from the run, e.g. instruction tuning) reloads it
with load_tokenizer(workdir). The vocabulary is ('<unk>', '<eos>') followed
by the model's pieces in model order; the id stream of a split is the pieces
of its text as the char level sees it (the stdlib's files joined by their
separator line), with no '<eos>' per line: '\\n' is a piece of its own.

The trainer reads "sentences": for the stdlib one file each (the separator
removed), other text (and the few larger files) cut at line ends into
pieces of at most MAX_SENTENCE_CHARS. Past MAX_TRAIN_CHARS in all, only every
k-th sentence (deterministic), to bound the training time; encoding always
uses the whole text.
"""

import os
import pathlib

import numpy as np

from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data import tokenizers as tok_lib
from rnnlm_jax.data.corpus import md5_of, RawCorpus, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.sources import stdlib as stdlib_source
from rnnlm_jax.data.vocab import Vocabulary

SPM_NAME = 'spm'  # {workdir}/spm.model, spm.vocab, spm.json
MAX_TRAIN_CHARS = 16_000_000  # the 3.11 stdlib train split: ~10M, all read
MAX_SENTENCE_CHARS = 1 << 16
# Encoding cuts the text after a '\n' (a user-defined symbol, so no piece
# spans it): the same pieces as encoding the whole text at once.
_ENCODE_CHUNK_CHARS = 1 << 16


def _chunks(text: str, size: int) -> list[str]:
  """`text` cut after a '\\n' into pieces of about `size` characters or less
  (a single longer line stays whole); ''.join(result) == text."""
  out, start = [], 0
  while start < len(text):
    end = start + size
    if end < len(text):
      cut = text.rfind('\n', start, end)
      end = cut + 1 if cut >= start else text.find('\n', end) + 1 or len(text)
    out.append(text[start:end])
    start = end
  return out


def training_sentences(raw: RawCorpus, max_chars: int = MAX_TRAIN_CHARS
                       ) -> list[str]:
  """The sentences the SentencePiece trainer reads (module docstring)."""
  train = raw.texts['train']
  files = (train.split(stdlib_source.SEPARATOR) if raw.name == 'stdlib'
           else [train])
  sentences = [c for f in files for c in _chunks(f, MAX_SENTENCE_CHARS) if c]
  total = sum(map(len, sentences))
  if max_chars and total > max_chars:
    step = -(-total // max_chars)  # ceil: every step-th sentence
    sentences = sentences[::step]
  return sentences


def load_or_train_tokenizer(raw: RawCorpus, directory: str | os.PathLike,
                            vocab_size: int) -> tok_lib.SentencePieceTokenizer:
  """The run's code_bpe model: `{directory}/spm.model`, trained if absent."""
  if not raw.texts['train']:
    raise DataError(f'corpus {raw.name!r} has an empty train split: nothing '
                    'to train the SentencePiece model on')
  return tok_lib.load_or_train_sentencepiece(
      training_sentences(raw), directory, SPM_NAME, vocab_size,
      lowercase=False, model_type='code_bpe')


def load_tokenizer(directory: str | os.PathLike
                   ) -> tok_lib.SentencePieceTokenizer:
  """The code_bpe tokenizer a data.level='code_bpe' run saved in
  `directory` (its workdir)."""
  path = pathlib.Path(directory) / f'{SPM_NAME}.model'
  if not path.is_file():
    raise DataError(f"{path} does not exist: {directory} is not a "
                    "data.level='code_bpe' run (or it has not started)")
  return tok_lib.SentencePieceTokenizer(path, lowercase=False)


def vocabulary(tokenizer: tok_lib.SentencePieceTokenizer) -> Vocabulary:
  """('<unk>', '<eos>') + the model's pieces, in model order."""
  specials = (text_lib.UNK, text_lib.EOS)
  return Vocabulary(specials + tuple(p for p in tokenizer.pieces
                                     if p not in specials))


def encode(text: str, tokenizer: tok_lib.SentencePieceTokenizer,
           vocab: Vocabulary) -> np.ndarray:
  """int32 [N] ids of the pieces of `text`."""
  pieces = [p for chunk in _chunks(text, _ENCODE_CHUNK_CHARS)
            for p in tokenizer.tokenize(chunk)]
  return vocab.encode(pieces)


def encode_corpus(raw: RawCorpus, directory: str | os.PathLike,
                  vocab_size: int, vocab: Vocabulary | None):
  """(vocab, {split: int32 ids}, fingerprint, tokenizer) of `raw` at
  code_bpe level.

  vocab: the run's saved vocabulary (resuming), or None for the model's.
  """
  tokenizer = load_or_train_tokenizer(raw, directory, vocab_size)
  vocab = vocabulary(tokenizer) if vocab is None else vocab
  ids = {s: encode(raw.texts[s], tokenizer, vocab) for s in SPLITS}
  return vocab, ids, md5_of([raw.fingerprint, 'code_bpe',
                             tokenizer.settings()]), tokenizer
