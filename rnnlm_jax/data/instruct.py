"""Instruction / response pairs for decoder-only LMs (task='instruct').

One example is one row of a single token sequence, one vocabulary for both
parts:
  row     = [<eos>] + prompt + response + [<eos>]
  prompt  = the ids of template(instruction), e.g.
            '### Instruction:\\n{instruction}\\n### Response:\\n'
  inputs  = row[:-1], targets = row[1:]  (the leading '<eos>' acts as BOS,
            as the boundary token does in the LM's sentence mode)
  mask    = 1.0 on the targets that are response tokens or the final
            '<eos>', 0.0 on the prompt and on padding
so the loss (and its gradient) only asks the model for the response. A row
longer than max_len model positions keeps its first max_len + 1 tokens: the
response is cut and loses its '<eos>' (the model is not taught to stop
there); a prompt that leaves no response target is dropped. Both counted.

Tokenization (`Codec`): 'char' (characters; the vocabulary built over the
training rows) or 'code_bpe' (SentencePiece BPE with byte fallback trained on
the training rows, data/tokenizers.py; vocabulary '<unk>', '<eos>', then the
pieces). Batches: padded rows bucketed by length, shuffled per (seed, epoch)
with paired_batching's plan; the carry is reset every batch.
"""

import dataclasses
from typing import Iterator, Mapping, Sequence

import numpy as np

from rnnlm_jax.data import paired_batching
from rnnlm_jax.data import tokenizers as tok_lib
from rnnlm_jax.data.batching import Batch, check_rows, check_start
from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.text import EOS, UNK
from rnnlm_jax.data.vocab import Vocabulary

LEVELS = ('char', 'code_bpe')
FIELD = '{instruction}'
SPM_NAME = 'spm'  # spm.model / spm.vocab / spm.json in the workdir
SPECIALS = (UNK, EOS)


def prompt_text(template: str, instruction: str) -> str:
  """The template with the instruction in place of '{instruction}' (no
  str.format: templates may hold braces, e.g. code)."""
  return template.replace(FIELD, instruction)


def check_template(template: str, key: str = 'data.instruct.template') -> None:
  if template.count(FIELD) != 1:
    raise DataError(f'{key}={template!r} must contain {FIELD!r} exactly once')


@dataclasses.dataclass(frozen=True)
class Codec:
  """Text <-> ids of one run.

  level: 'char' | 'code_bpe'; vocab: Vocabulary with '<eos>';
  tokenizer: the SentencePieceTokenizer at 'code_bpe', else None.
  """
  level: str
  vocab: Vocabulary
  tokenizer: object | None
  template: str

  def __post_init__(self):
    if self.vocab.eos_id is None:
      raise DataError(f'the vocabulary ({len(self.vocab)} tokens) has no '
                      f"{EOS!r} to end a response with")

  @property
  def eos_id(self) -> int:
    return self.vocab.eos_id

  def encode(self, text: str) -> np.ndarray:
    """int32 [n] ids of `text` (no specials)."""
    if self.level == 'char':
      return self.vocab.encode(text)
    return self.vocab.encode(self.tokenizer.tokenize(text))

  def decode(self, ids) -> str:
    """The text of `ids`, up to the first '<eos>'."""
    ids = np.asarray(ids).reshape(-1).tolist()
    if self.eos_id in ids:
      ids = ids[:ids.index(self.eos_id)]
    tokens = self.vocab.decode(ids)
    return ''.join(tokens) if self.level == 'char' else (
        self.tokenizer.detokenize(tokens))

  def prompt_ids(self, instruction: str) -> np.ndarray:
    """int32 [P]: '<eos>' (as BOS) + the ids of template(instruction)."""
    ids = self.encode(prompt_text(self.template, instruction))
    return np.concatenate([[self.eos_id], ids]).astype(np.int32)

  def settings(self) -> str:
    tok = self.tokenizer.settings() if self.tokenizer else 'char'
    return f'{self.level}:{tok}:{self.vocab.fingerprint}'


def build_codec(level: str, template: str, train_texts: Sequence[str], *,
                spm_dir: str = '', spm_vocab_size: int = 8000,
                min_count: int = 1, max_size: int = 0) -> Codec:
  """A codec learned from the training rows' texts (prompt + response)."""
  check_template(template)
  if level not in LEVELS:
    raise DataError(f"data.level={level!r} is not one of {LEVELS} (the "
                    "'instruct' task)")
  if level == 'char':
    vocab = Vocabulary.build(''.join(train_texts), max_size=max_size,
                             min_count=min_count, specials=SPECIALS)
    return Codec(level, vocab, None, template)
  if not spm_dir:
    raise DataError("data.level='code_bpe' needs a directory (the run's "
                    'workdir) to save the SentencePiece model in')
  tokenizer = tok_lib.load_or_train_sentencepiece(
      list(train_texts), spm_dir, SPM_NAME, spm_vocab_size, lowercase=False,
      model_type='code_bpe')
  return Codec(level, piece_vocabulary(tokenizer), tokenizer, template)


def piece_vocabulary(tokenizer) -> Vocabulary:
  """'<unk>', '<eos>', then every piece of the model, in model order."""
  return Vocabulary(SPECIALS + tuple(p for p in tokenizer.pieces
                                     if p not in SPECIALS))


def make_row(prompt: np.ndarray, response: np.ndarray, eos_id: int,
             max_len: int) -> tuple[np.ndarray | None, bool]:
  """(row, truncated): prompt + response + [eos], at most max_len + 1
  tokens (max_len model positions; 0: no limit); row None when the prompt
  leaves no response target."""
  row = np.concatenate([prompt, response, [eos_id]]).astype(np.int32)
  if not max_len or len(row) <= max_len + 1:
    return row, False
  if len(prompt) >= max_len + 1:
    return None, True
  return row[:max_len + 1], True


# eq=False: a generated __eq__ would compare numpy arrays elementwise.
@dataclasses.dataclass(frozen=True, eq=False)
class InstructData:
  """Encoded instruction rows of the three splits.

  rows: {split: tuple of int32 [L_i] rows (see the module doc)};
  prompt_lens: {split: int64 [N]}: P_i, the '<eos>' + prompt tokens of row i;
  instructions, responses: {split: tuple of str}, aligned with rows;
  truncated, dropped: {split: count} by the max_len limit;
  scored_chars: {split: count}: the characters of the scored targets (each
    response as kept, plus 1 for its final '<eos>'), so that scores of runs
    with different tokenizers compare per character.
  """
  name: str
  codec: Codec
  rows: Mapping[str, tuple]
  prompt_lens: Mapping[str, np.ndarray]
  instructions: Mapping[str, tuple]
  responses: Mapping[str, tuple]
  fingerprint: str
  truncated: Mapping[str, int]
  dropped: Mapping[str, int]
  scored_chars: Mapping[str, int]

  @property
  def vocab(self) -> Vocabulary:
    return self.codec.vocab

  @property
  def level(self) -> str:
    return self.codec.level

  def split(self, name: str) -> tuple[tuple, np.ndarray]:
    """(rows, prompt_lens) of split `name`."""
    if name not in SPLITS:
      raise DataError(f'split {name!r} is not one of {SPLITS}')
    return self.rows[name], self.prompt_lens[name]

  def __repr__(self) -> str:
    sizes = ', '.join(f'{s}={len(self.rows[s]):,}' for s in SPLITS)
    return (f'InstructData({self.name!r}, {self.level}, '
            f'vocab={len(self.vocab):,}, {sizes})')


def train_texts(raw, template: str) -> list[str]:
  """The text of every training row (what the tokenizer learns from)."""
  return [prompt_text(template, i) + r
          for i, r in zip(raw.source['train'], raw.target['train'])]


def encode_pairs(raw, codec: Codec, max_len: int,
                 max_pairs: int = 0) -> InstructData:
  """RawPairs (source: instructions, target: responses) -> InstructData;
  max_pairs > 0 keeps the first pairs of each split."""
  rows, lens, instr, resp, truncated, dropped = {}, {}, {}, {}, {}, {}
  chars = {}
  for split in SPLITS:
    pairs = list(zip(raw.source[split], raw.target[split]))
    if max_pairs:
      pairs = pairs[:max_pairs]
    kept, truncated[split], dropped[split] = [], 0, 0
    for instruction, response in pairs:
      prompt = codec.prompt_ids(instruction)
      row, cut = make_row(prompt, codec.encode(response), codec.eos_id,
                          max_len)
      truncated[split] += cut and row is not None
      dropped[split] += row is None
      if row is not None:
        row.setflags(write=False)
        kept.append((row, len(prompt), instruction, response))
    rows[split] = tuple(k[0] for k in kept)
    lens[split] = np.array([k[1] for k in kept], np.int64)
    instr[split] = tuple(k[2] for k in kept)
    resp[split] = tuple(k[3] for k in kept)
    chars[split] = sum(len(codec.decode(row[n:])) + int(row[-1] == codec.eos_id)
                       for row, n, _, _ in kept)
  fingerprint = md5_of([raw.fingerprint, codec.template, codec.settings(),
                        str(max_len), str(max_pairs)])
  return InstructData(raw.name, codec, rows, lens, instr, resp, fingerprint,
                      truncated, dropped, chars)


# --- batches -----------------------------------------------------------------

def pack(rows: Sequence[np.ndarray], prompt_lens: np.ndarray, idx, width: int,
         num_rows: int) -> Batch:
  """Batch [num_rows, width] of the rows `idx` (fewer: padding rows)."""
  inputs = np.zeros((num_rows, width), np.int32)
  targets = np.zeros((num_rows, width), np.int32)
  mask = np.zeros((num_rows, width), np.float32)
  for r, i in enumerate(idx):
    row, n = rows[i], len(rows[i]) - 1
    inputs[r, :n] = row[:-1]
    targets[r, :n] = row[1:]
    # Target j is token j + 1 of the row: a response token from j = P - 1.
    mask[r, prompt_lens[i] - 1:n] = 1.0
  return Batch(inputs, targets, mask)


def _width(rows, idx, pad_multiple: int, max_len: int) -> int:
  longest = max((len(rows[i]) - 1 for i in idx), default=1)
  width = paired_batching.padded_width(longest, pad_multiple)
  return min(width, max_len) if max_len else width


def num_train_batches(num_rows: int, batch_size: int) -> int:
  """Steps per epoch (the last incomplete batch is dropped)."""
  return paired_batching.num_batches(num_rows, batch_size, drop_last=True)


def batches(rows: Sequence[np.ndarray], prompt_lens: np.ndarray,
            batch_size: int, *, seed: int = 0, epoch: int = 0,
            shuffle: bool = True, pad_multiple: int = 8, max_len: int = 0,
            start: int = 0, rows_range: tuple[int, int] | None = None
            ) -> Iterator[Batch]:
  """The batches of one epoch: training order (bucketed by length, shuffled
  per (seed, epoch), last incomplete batch dropped), or with shuffle=False
  every row once in corpus order (the last batch padded with mask-0 rows).
  The width comes from the whole global batch, so every `rows_range` slice
  has the same shape."""
  plan = paired_batching.batch_plan(
      rows, rows, batch_size, seed=seed, epoch=epoch, shuffle=shuffle,
      pad_multiple=pad_multiple, drop_last=shuffle)
  a, b = check_rows(rows_range, batch_size)
  for idx in plan[check_start(start, len(plan)):]:
    width = _width(rows, idx, pad_multiple, max_len)
    yield pack(rows, prompt_lens, idx[a:b], width, b - a)
