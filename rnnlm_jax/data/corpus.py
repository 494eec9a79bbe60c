"""The Corpus container and the text -> id-stream step shared by the sources."""

import dataclasses
import hashlib
from typing import Iterable, Mapping

import numpy as np

from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.vocab import Vocabulary

SPLITS = ('train', 'valid', 'test')


def md5_of(parts: Iterable[str | bytes]) -> str:
  """md5 hex over `parts`, each length-prefixed (unambiguous boundaries)."""
  h = hashlib.md5()
  for part in parts:
    data = part.encode('utf-8') if isinstance(part, str) else bytes(part)
    h.update(f'{len(data)}:'.encode())
    h.update(data)
  return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class RawCorpus:
  """What a text source produces: one raw text per split.

  Attributes:
    name: corpus name, e.g. 'ptb' or 'tfds:tiny_shakespeare'.
    texts: {'train'|'valid'|'test': str}.
    fingerprint: md5 identifying the raw text and the split rule.
  """
  name: str
  texts: Mapping[str, str]
  fingerprint: str


# eq=False: the generated __eq__ would compare numpy arrays elementwise and
# raise; compare `fingerprint` and `vocab` instead.
@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
  """A tokenized corpus: a vocabulary and three read-only id streams.

  Attributes:
    name: e.g. 'ptb', 'stdlib', 'synthetic', 'tfds:tiny_shakespeare'.
    level: 'word' | 'char'.
    vocab: the Vocabulary the streams are encoded with.
    train, valid, test: [N_split] token-id streams: int32, or read-only
      np.memmap uint16 / uint32 when loaded from the corpus cache.
    fingerprint: md5 identifying the raw corpus (text/files + split rule).
    oracle_nll: synthetic only: {split: mean nats/token of the true model}.
    tokenizer: level 'code_bpe' only: the SentencePiece tokenizer of the
      pieces (encodes prompts).
  """
  name: str
  level: str
  vocab: Vocabulary
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray
  fingerprint: str
  oracle_nll: dict | None = None
  tokenizer: object = None

  def split(self, name: str) -> np.ndarray:
    """The id stream of split `name` ('train' | 'valid' | 'test')."""
    if name not in SPLITS:
      raise DataError(f'split {name!r} is not one of {SPLITS}')
    return getattr(self, name)

  @property
  def boundary_id(self) -> int:
    """Sentence boundary id for sentence mode: '<eos>' (word), '\\n' (char)."""
    token = text_lib.EOS if self.level == 'word' else '\n'
    if token not in self.vocab.tokens:
      raise DataError(f'corpus {self.name!r} has no {token!r} token, so '
                      "data.mode='sentence' cannot split it; use 'stream'")
    return self.vocab.id_of(token)

  def __repr__(self) -> str:
    sizes = ', '.join(f'{s}={len(self.split(s)):,}' for s in SPLITS)
    return (f'Corpus({self.name!r}, level={self.level!r}, '
            f'vocab={len(self.vocab):,}, {sizes})')


# Id dtypes of the corpus cache's memory-mapped files, kept as they are:
# converting a mapped stream to int32 would copy all of it into memory.
# Batching converts each window it returns.
MAPPED_DTYPES = (np.dtype(np.uint16), np.dtype(np.uint32))


def readonly(ids: np.ndarray) -> np.ndarray:
  """A view of `ids` that cannot be modified (a Corpus is frozen).

  int32, except uint16 / uint32 streams (memory-mapped), which keep their dtype.
  """
  if not isinstance(ids, np.ndarray):  # np.asarray would drop np.memmap
    ids = np.asarray(ids)
  if ids.dtype not in MAPPED_DTYPES:
    ids = ids.astype(np.int32, copy=False)
  ids.setflags(write=False)
  return ids


def cap_tokens(stream: np.ndarray, cap: int) -> np.ndarray:
  """First `cap` tokens of `stream` (all of them when cap == 0)."""
  return stream[:cap] if cap else stream


def encode_texts(texts: Mapping[str, str], level: str, lowercase: bool,
                 vocab: Vocabulary | None, max_size: int = 0,
                 min_count: int = 1) -> tuple[Vocabulary, dict]:
  """Tokenizes and encodes every split; builds the vocab from train if needed.

  Args:
    texts: {split: raw text}.
    level: 'word' | 'char'.
    lowercase: lowercase before tokenizing.
    vocab: encode with this vocabulary (resuming); None builds one from train.
    max_size, min_count: Vocabulary.build options.

  Returns:
    (vocab, {split: int32 [N_split] ids}).
  """
  text_lib.check_level(level)
  if lowercase:
    texts = {s: t.lower() for s, t in texts.items()}
  if level == 'char':
    # A str is a sequence of characters: Vocabulary's vectorised fast path.
    tokens = dict(texts)
  else:
    tokens = {s: text_lib.tokenize(t, 'word') for s, t in texts.items()}
  if vocab is None:
    # Char level needs no '<eos>': the '\n' character already ends lines.
    specials = (text_lib.UNK,) if level == 'char' else (text_lib.UNK,
                                                        text_lib.EOS)
    vocab = Vocabulary.build(tokens['train'], max_size=max_size,
                             min_count=min_count, specials=specials)
  return vocab, {s: vocab.encode(tokens[s]) for s in SPLITS}
