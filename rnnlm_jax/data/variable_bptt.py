"""Variable BPTT length (Merity et al. 2017, Section 4.1), bucketed.

Each training window's length is drawn as AWD-LSTM does: base = T with
probability p (train.bptt_p_full, 0.95), else T/2; length ~ N(base, std)
(train.bptt_std, 5). The learning rate of that step is scaled by length / T,
so that short windows do not get an outsized share of the updates.

Every distinct length is a new shape and so a new compilation of train_step;
lengths are therefore clipped to base +- 2 std and rounded to a multiple of
train.bptt_bucket, which bounds the shapes by `max_distinct_lengths` (10 for
T=70, std 5, bucket 5).

The loop's invariants are kept: an epoch is still `num_bptt_windows(T)`
steps, and the windows of an epoch are a pure function of (seed, epoch), so a
resumed run reads the same windows from the same step. Windows are contiguous
per row, as fixed-length TBPTT; since lengths average slightly under T, the
tail of a row is left out (as AWD's loop does). If the draws overshoot the row
(possible on tiny data) reading restarts at the row's beginning.
"""

from typing import Iterator, NamedTuple

import numpy as np

from rnnlm_jax.data.batching import Batch, check_rows


class BpttWindow(NamedTuple):
  offset: int  # first input position in each row
  length: int  # tokens per row, also the batch's T


def bucket_bounds(base: float, std: float, bucket: int) -> tuple[int, int]:
  """Smallest and largest length drawn around `base` (multiples of bucket)."""
  lo = max(bucket, int(np.ceil((base - 2 * std) / bucket)) * bucket)
  hi = max(lo, int(np.floor((base + 2 * std) / bucket)) * bucket)
  return lo, hi


def bucketed_length(draw: float, base: float, std: float, bucket: int) -> int:
  """A N(base, std) draw clipped to base +- 2 std, rounded to the bucket."""
  lo, hi = bucket_bounds(base, std, bucket)
  return int(np.clip(round(draw / bucket) * bucket, lo, hi))


def max_distinct_lengths(seq_len: int, std: float, bucket: int) -> int:
  """Upper bound on the number of window lengths (= compiled shapes)."""
  count = 0
  for base in (seq_len, seq_len / 2):
    lo, hi = bucket_bounds(base, std, bucket)
    count += (hi - lo) // bucket + 1
  return count


def epoch_plan(num_windows: int, row_len: int, seq_len: int, *, seed: int,
               epoch: int, p_full: float, std: float, bucket: int) -> list[BpttWindow]:
  """The `num_windows` windows of one epoch over rows of `row_len` tokens."""
  rng = np.random.default_rng([seed, epoch])
  plan, offset = [], 0
  for _ in range(num_windows):
    base = seq_len if rng.random() < p_full else seq_len / 2
    length = bucketed_length(rng.normal(base, std), base, std, bucket)
    length = min(length, row_len - 1)  # only on data too small for the bucket
    if offset + length > row_len - 1:
      offset = 0  # overshoot: read the rows again from their start
    plan.append(BpttWindow(offset, length))
    offset += length
  return plan


def windows(stream: np.ndarray, batch_size: int, plan: list[BpttWindow], *,
            start: int = 0, rows: tuple[int, int] | None = None
            ) -> Iterator[Batch]:
  """Batches of `plan[start:]`: inputs/targets int32, mask f32, [b-a, length].

  rows: (a, b), this process' rows of the global batch, as data.bptt_windows.
  """
  a, b = check_rows(rows, batch_size)
  length = len(stream) // batch_size
  table = np.asarray(stream)[:batch_size * length].reshape(batch_size, length)
  table = table[a:b]  # a view: a memory-mapped stream is converted per window
  for window in plan[start:]:
    lo, n = window
    yield Batch(np.ascontiguousarray(table[:, lo:lo + n], dtype=np.int32),
                np.ascontiguousarray(table[:, lo + 1:lo + n + 1], dtype=np.int32),
                np.ones((b - a, n), np.float32))


def lr_scale(window_length: int, seq_len: int) -> float:
  """AWD's per-step learning-rate factor: length / T."""
  return window_length / seq_len
