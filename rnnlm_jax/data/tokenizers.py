"""Sentence tokenizers for translation pairs: punctuation splitting, subwords.

Both turn one sentence (str) into a list of token strings and back:
  * PunctTokenizer: words and punctuation marks as separate tokens, for
    European text. A hyphen or apostrophe between two word characters stays
    inside the word ('T-Shirt', "isn't"), as does a hyphen that ends a word
    before a space ('Zwei- und vierbeinige'), a decimal or thousands separator
    inside a number ('3.50', '1,000'); every other punctuation character is a
    token of its own. Its detokenizer re-attaches punctuation by the usual
    spacing rules, so on normally spaced text detokenize(tokenize(s)) == s.
  * SentencePieceTokenizer: subword pieces of a `sentencepiece` model trained
    on the training split (train_sentencepiece) and saved beside the run.
    model_type='code_bpe' trains it for source code: BPE with byte fallback
    (no '<unk>' for a character outside the training text), no text
    normalization and every space, tab and newline kept as a piece, so that
    detokenize(tokenize(code)) == code exactly.

The ids come from a Vocabulary built over the token strings (paired.py), so
both kinds share one encoding path and the same special tokens.
"""

import hashlib
import json
import os
import pathlib
import re
from typing import Iterable, Iterator, Sequence

from rnnlm_jax.data import streaming
from rnnlm_jax.data.errors import DataError

TOKENIZERS = ('punct', 'sentencepiece')
MODEL_TYPES = ('unigram', 'bpe', 'code_bpe')

# SentencePiece trainer options per model type: code is kept byte for byte.
_TRAINER_OPTIONS = {
    'unigram': dict(model_type='unigram'),
    'bpe': dict(model_type='bpe'),
    'code_bpe': dict(
        model_type='bpe', byte_fallback=True, normalization_rule_name='identity',
        remove_extra_whitespaces=False, add_dummy_prefix=False,
        allow_whitespace_only_pieces=True, user_defined_symbols=['\n', '\t'],
        character_coverage=0.9999, max_sentence_length=1 << 20),
}

_TOKEN = re.compile(
    r"\d+(?:[.,:]\d+)+"         # numbers with separators: 3.50  1,000  10:30
    r"|\w+(?:[-'’]\w+)*(?:-(?=\s))?"  # words, inner hyphens/apostrophes,
                                  # a German suspended hyphen ('Zwei- und')
    r"|[^\w\s]")                 # any other non-space character on its own

_NO_SPACE_BEFORE = frozenset('.,!?;:)]}%…»')
_NO_SPACE_AFTER = frozenset('([{¿¡«')
# Quotes whose direction depends on position: open if nothing is open.
_TOGGLE_QUOTES = frozenset(['"', "'", '`'])


class PunctTokenizer:
  """Regex word/punctuation tokenizer (see the module docstring).

  Attributes:
    lowercase: lower-case before splitting.
  """

  kind = 'punct'

  def __init__(self, lowercase: bool = True):
    self.lowercase = bool(lowercase)

  def tokenize(self, sentence: str) -> list[str]:
    if self.lowercase:
      sentence = sentence.lower()
    return _TOKEN.findall(sentence)

  def detokenize(self, tokens: Sequence[str]) -> str:
    """One string from tokens; punctuation attached as in normal writing."""
    out = []
    attach_next = False  # the previous token opened something
    open_quotes = []     # stack of quote tokens currently open
    for tok in tokens:
      attach = attach_next or not out
      attach_next = False
      if tok in _NO_SPACE_BEFORE:
        attach = True
      elif tok in _NO_SPACE_AFTER:
        attach_next = True
      elif tok in _TOGGLE_QUOTES:
        if open_quotes and open_quotes[-1] == tok:
          open_quotes.pop()
          attach = True
        else:
          open_quotes.append(tok)
          attach_next = True
      elif tok == '„' or tok == '‚':   # German opening quotes
        open_quotes.append(tok)
        attach_next = True
      elif tok in ('“', '‘'):
        # Closes an open German „ / ‚ („...“), else opens (English “...”).
        if open_quotes and open_quotes[-1] in ('„', '‚'):
          open_quotes.pop()
          attach = True
        else:
          open_quotes.append(tok)
          attach_next = True
      elif tok in ('”', '’'):
        if open_quotes:
          open_quotes.pop()
        attach = True
      out.append(tok if attach else ' ' + tok)
    return ''.join(out)

  def settings(self) -> str:
    return f'punct:lowercase={self.lowercase}'


class SentencePieceTokenizer:
  """Subword pieces of a trained SentencePiece model.

  Attributes:
    model_path: the .model file it was loaded from.
    lowercase: lower-case before encoding (the model was trained that way).
    pieces: the model's pieces in its id order, '<unk>' (id 0) excluded.
  """

  kind = 'sentencepiece'

  def __init__(self, model_path: str | os.PathLike, lowercase: bool = True):
    spm = _import_spm()
    self.model_path = pathlib.Path(model_path)
    self.lowercase = bool(lowercase)
    if not self.model_path.is_file():
      raise DataError(f'SentencePiece model {self.model_path} does not exist; '
                      'train it with train_sentencepiece')
    self._sp = spm.SentencePieceProcessor()
    try:
      self._sp.Load(str(self.model_path))
    except (OSError, RuntimeError) as e:
      first = (str(e).splitlines() or [type(e).__name__])[0]
      raise DataError(f'cannot load SentencePiece model {self.model_path}: '
                      f'{first}; delete it to retrain') from None
    self.pieces = tuple(self._sp.IdToPiece(i)
                        for i in range(self._sp.GetPieceSize())
                        if not (self._sp.IsUnknown(i) or self._sp.IsControl(i)))

  def tokenize(self, sentence: str) -> list[str]:
    if self.lowercase:
      sentence = sentence.lower()
    return self._sp.EncodeAsPieces(sentence)

  def detokenize(self, tokens: Sequence[str]) -> str:
    return self._sp.DecodePieces(list(tokens))

  def settings(self) -> str:
    digest = _file_md5(self.model_path)
    return f'sentencepiece:lowercase={self.lowercase}:model_md5={digest}'


def _import_spm():
  try:
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise DataError("tokenizer='sentencepiece' needs the sentencepiece "
                    'package: pip install "sentencepiece>=0.1.99"') from None
  return spm


def _file_md5(path: pathlib.Path) -> str:
  return hashlib.md5(path.read_bytes()).hexdigest()


def _hashed(sentences: Iterable[str],
            md5: streaming.JoinedLinesMd5) -> Iterator[str]:
  """The sentences, fed into `md5` on the way."""
  for s in sentences:
    md5.add(s)
    yield s


def _lines_md5(sentences: Iterable[str]) -> str:
  """md5 hex of '\n'.join(sentences), without joining them."""
  md5 = streaming.JoinedLinesMd5()
  for s in sentences:
    md5.add(s)
  return md5.hexdigest()


def _training_record(train_md5: str, vocab_size: int, lowercase: bool,
                     model_type: str) -> dict:
  return {'vocab_size': int(vocab_size), 'lowercase': bool(lowercase),
          'model_type': model_type, 'train_md5': train_md5}


def train_sentencepiece(sentences: Iterable[str], model_dir: str | os.PathLike,
                        name: str, vocab_size: int, lowercase: bool = True,
                        model_type: str = 'unigram') -> SentencePieceTokenizer:
  """Trains a SentencePiece model on `sentences`, saves and loads it.

  Writes `{model_dir}/{name}.model` and `.vocab` (atomically: renamed into
  place once complete), then `{name}.json`, the training settings that
  load_or_train_sentencepiece checks. The model has only its '<unk>' piece
  besides the learned ones: '<pad>', '<bos>', '<eos>' are added by the
  Vocabulary built over the pieces. Training runs on one thread so the same
  sentences always give the same model.

  Args:
    sentences: training sentences (the train split of one language).
    model_dir: where to save the model (the run's workdir).
    name: file stem, e.g. 'spm.de'.
    vocab_size: number of pieces, '<unk>' included; on a small corpus
      SentencePiece may learn fewer (hard_vocab_limit=False).
    lowercase: lower-case the sentences first (tokenize does the same).
    model_type: one of MODEL_TYPES ('code_bpe': for source code, see above).
  """
  spm = _import_spm()
  if model_type not in MODEL_TYPES:
    raise DataError(f'SentencePiece model_type={model_type!r} is not one of '
                    f'{MODEL_TYPES}')
  if vocab_size < 8:
    raise DataError(f'data.spm_vocab_size={vocab_size} must be >= 8')
  model_dir = pathlib.Path(model_dir)
  model_dir.mkdir(parents=True, exist_ok=True)
  md5 = streaming.JoinedLinesMd5()  # of the sentences streamed into the trainer
  feed = (s.lower() if lowercase else s for s in _hashed(sentences, md5))
  prefix, tmp = model_dir / name, model_dir / f'.{name}.tmp'
  options = {'character_coverage': 1.0, **_TRAINER_OPTIONS[model_type]}
  try:
    spm.SentencePieceTrainer.Train(
        sentence_iterator=feed, model_prefix=str(tmp),
        vocab_size=int(vocab_size), hard_vocab_limit=False,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, unk_piece='<unk>',
        num_threads=1, minloglevel=2, **options)
  except (RuntimeError, OSError) as e:
    first = (str(e).splitlines() or [type(e).__name__])[0]
    raise DataError(f'SentencePiece training of {prefix}.model failed: '
                    f'{first}') from None
  for ext in ('vocab', 'model'):
    os.replace(f'{tmp}.{ext}', f'{prefix}.{ext}')
  for _ in feed:  # the md5 covers every sentence, read or not
    pass
  record = _training_record(md5.hexdigest(), vocab_size, lowercase, model_type)
  with open(f'{prefix}.json', 'w', encoding='utf-8') as f:
    json.dump(record, f)
  return SentencePieceTokenizer(f'{prefix}.model', lowercase=lowercase)


def load_or_train_sentencepiece(sentences: Sequence[str],
                                model_dir: str | os.PathLike, name: str,
                                vocab_size: int, lowercase: bool = True,
                                model_type: str = 'unigram'
                                ) -> SentencePieceTokenizer:
  """Loads `{model_dir}/{name}.model` if it exists, else trains it.

  A model that train_sentencepiece saved with other settings or on other
  sentences (its `{name}.json`) is an error, not silently reused: the ids of
  a checkpoint would no longer mean the same pieces.
  """
  prefix = pathlib.Path(model_dir) / name
  model = pathlib.Path(f'{prefix}.model')
  if not model.is_file():
    return train_sentencepiece(sentences, model_dir, name, vocab_size,
                               lowercase, model_type)
  record_path = pathlib.Path(f'{prefix}.json')
  if record_path.is_file():
    try:
      saved = json.loads(record_path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
      saved = {}
    wanted = _training_record(_lines_md5(sentences), vocab_size, lowercase,
                              model_type)
    diff = [f'{k} {saved.get(k)!r} (now {v!r})' for k, v in wanted.items()
            if saved.get(k) != v]
    if diff:
      raise DataError(f'{model} was trained with other settings or data: '
                      f'{"; ".join(diff)}; use a new data.spm_dir or delete '
                      f'{model} to retrain')
  return SentencePieceTokenizer(model, lowercase=lowercase)
