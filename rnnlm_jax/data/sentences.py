"""Sentence-mode batching: one padded, masked sentence per row.

The stream is cut after every boundary token ('<eos>' for words, '\n' for
characters). A sentence s (ending in its boundary) becomes one row:
  inputs  = [boundary] + s[:-1]   (the previous boundary acts as BOS)
  targets = s                     (so the model learns to end sentences)
truncated to max_len and padded with id 0 / mask 0. The recurrent state is
reset for every batch, unlike stream mode.
"""

from typing import Iterator

import numpy as np

from rnnlm_jax.data.batching import Batch, check_rows, check_start
from rnnlm_jax.data.errors import DataError


def sentence_bounds(stream: np.ndarray, boundary_id: int) -> np.ndarray:
  """int64 [S, 2]: (start, end) of each sentence, end exclusive.

  Every sentence ends just after a boundary token, except a trailing one
  without a final boundary.
  """
  stream = np.asarray(stream)
  # In blocks: a whole-stream comparison would hold N bytes at once.
  step = 1 << 24
  ends = np.concatenate(
      [np.zeros(0, np.int64)]
      + [np.flatnonzero(stream[i:i + step] == boundary_id) + (i + 1)
         for i in range(0, len(stream), step)])
  if len(ends) == 0 or ends[-1] != len(stream):
    ends = np.append(ends, len(stream))
  starts = np.concatenate([[0], ends[:-1]])
  keep = ends > starts  # an empty stream gives one empty "sentence"
  return np.stack([starts[keep], ends[keep]], axis=1)


def num_sentence_batches(stream: np.ndarray, boundary_id: int,
                         batch_size: int, max_len: int, *,
                         drop_last: bool = True) -> int:
  """Number of batches sentence_batches yields (same arguments).

  max_len does not change the count (long sentences are truncated, not
  split); it is taken so both functions are called alike.
  """
  if batch_size < 1 or max_len < 1:
    raise DataError(f'batch_size={batch_size} and max_len={max_len} must be '
                    '>= 1')
  num = len(sentence_bounds(stream, boundary_id))
  return num // batch_size if drop_last else -(-num // batch_size)


def sentence_batches(stream: np.ndarray, boundary_id: int, batch_size: int,
                     max_len: int, *, shuffle_seed: int | None = None,
                     start: int = 0, rows: tuple[int, int] | None = None,
                     drop_last: bool = True) -> Iterator[Batch]:
  """Yields batches of whole sentences.

  Args:
    stream: int [N] token ids.
    boundary_id: id of the token that ends a sentence.
    batch_size: B, sentences per batch (global).
    max_len: T; longer sentences are truncated (their tail is not trained on).
    shuffle_seed: None keeps corpus order; an int permutes the sentences
      deterministically (pass e.g. seed + epoch for a new order each epoch).
    start: skip the first `start` batches (resuming mid-epoch).
    rows: (a, b): yield only rows a:b of each batch.
    drop_last: drop a final incomplete batch; if False it is padded with
      empty (all mask 0) rows so shapes stay [B, T].

  Yields:
    Batch of int32 inputs/targets and float32 mask, each [b-a, T].
  """
  stream = np.asarray(stream)
  num = num_sentence_batches(stream, boundary_id, batch_size, max_len,
                             drop_last=drop_last)
  bounds = sentence_bounds(stream, boundary_id)
  if num == 0:
    raise DataError(f'the stream has only {len(bounds):,} sentences, fewer '
                    f'than batch_size={batch_size}; use a smaller batch_size')
  if shuffle_seed is not None:
    order = np.random.default_rng(shuffle_seed).permutation(len(bounds))
    bounds = bounds[order]
  a, b = check_rows(rows, batch_size)
  for i in range(check_start(start, num), num):
    chunk = bounds[i * batch_size:(i + 1) * batch_size][a:b]
    yield _pack(stream, chunk, boundary_id, b - a, max_len)


def _pack(stream, bounds, boundary_id, num_rows, max_len) -> Batch:
  """Batch [num_rows, max_len] from sentence bounds (fewer rows: padding)."""
  inputs = np.zeros((num_rows, max_len), dtype=np.int32)
  targets = np.zeros((num_rows, max_len), dtype=np.int32)
  mask = np.zeros((num_rows, max_len), dtype=np.float32)
  for r, (lo, hi) in enumerate(bounds):
    n = min(hi - lo, max_len)
    targets[r, :n] = stream[lo:lo + n]
    inputs[r, 0] = boundary_id
    inputs[r, 1:n] = stream[lo:lo + n - 1]
    mask[r, :n] = 1.0
  return Batch(inputs, targets, mask)
