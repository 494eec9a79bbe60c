"""Variable BPTT length (Merity et al. 2017, Section 4.1), bucketed.

Each training window's length is drawn as AWD-LSTM does: base = T with
probability p (train.bptt_p_full, 0.95), else T/2; length ~ N(base, std)
(train.bptt_std, 5). The learning rate of that step is scaled by length / T,
so that short windows do not get an outsized share of the updates.

Every distinct length is a new shape and so a new compilation of train_step;
lengths are therefore clipped to base +- 2 std and rounded to a multiple of
train.bptt_bucket, which bounds the shapes by `max_distinct_lengths` (10 for
T=70, std 5, bucket 5).

An epoch runs until its rows are used up, as AWD's loop (`while i <
len(row) - 2`): windows are contiguous per row and together cover input
positions [0, row_len - 1) exactly once, so every token is trained on once
per epoch. The last window is cut at the row's end; it keeps its drawn
length as its shape (the positions past the row are padding, mask 0), so it
adds no compilation, and its learning-rate factor is the drawn length / T,
as AWD's, which scales the rate before cutting the window. (AWD's loop also
skips a last window of one token, i.e. one position per row in some epochs;
here nothing is skipped.)

The number of steps therefore varies per epoch (PTB, T=70, B=20: about 681
rather than the (row_len - 1) // T = 663 of fixed windows). The plan of an
epoch is a pure function of (seed, epoch), and `VariableEpochs` maps a global step to
(epoch, position in it), so a resumed run reads the same windows from the
same step. `FixedEpochs` is the same interface for fixed-length windows.
"""

import bisect
from typing import Iterator, NamedTuple

import numpy as np

from rnnlm_jax.data.batching import Batch, check_rows


class BpttWindow(NamedTuple):
  offset: int  # first input position in each row
  length: int  # drawn length: the batch's T (the last window may be cut)


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


def max_windows(row_len: int, seq_len: int, std: float, bucket: int) -> int:
  """More windows than any epoch of rows of `row_len` tokens can need."""
  shortest = min(bucket_bounds(base, std, bucket)[0]
                 for base in (seq_len, seq_len / 2))
  return -(-(row_len - 1) // shortest)


def _lengths(row_len: int, seq_len: int, seed: int, epoch: int, p_full: float,
             std: float, bucket: int) -> np.ndarray:
  """The drawn (bucketed) lengths of enough windows for one epoch, int64 [N]."""
  n = max_windows(row_len, seq_len, std, bucket)
  rng = np.random.default_rng([seed, epoch])
  full = rng.random(n) < p_full
  draws = rng.normal(size=n) * std
  lengths = np.empty(n, np.int64)
  for is_full, base in ((True, seq_len), (False, seq_len / 2)):
    lo, hi = bucket_bounds(base, std, bucket)
    pick = full == is_full
    # np.round, as Python's round, rounds halves to even.
    lengths[pick] = np.clip(np.round((base + draws[pick]) / bucket) * bucket,
                            lo, hi)
  return lengths


def epoch_plan(row_len: int, seq_len: int, *, seed: int, epoch: int,
               p_full: float, std: float, bucket: int) -> list[BpttWindow]:
  """The windows of one epoch over rows of `row_len` tokens.

  Offsets run from 0 until the row is used up: the inputs of window k are
  positions [offset, min(offset + length, row_len - 1)) of each row.
  """
  if row_len < 2:
    raise ValueError(f'rows of {row_len} tokens hold no (input, target) pair')
  lengths = _lengths(row_len, seq_len, seed, epoch, p_full, std, bucket)
  ends = np.cumsum(lengths)
  count = int(np.searchsorted(ends, row_len - 1)) + 1  # first end >= row_len-1
  offsets = ends[:count] - lengths[:count]
  return [BpttWindow(int(o), int(n)) for o, n in zip(offsets, lengths[:count])]


class FixedEpochs:
  """Fixed-length windows: every epoch is `steps` steps."""

  def __init__(self, steps: int):
    self.steps = steps

  def steps_in_epoch(self, epoch: int) -> int:
    del epoch
    return self.steps

  def first_step(self, epoch: int) -> int:
    """Global step at which `epoch` starts (= steps of epochs 0..epoch-1)."""
    return epoch * self.steps

  def locate(self, step: int) -> tuple[int, int]:
    """Global step -> (epoch, batch index within it)."""
    return divmod(step, self.steps)


class VariableEpochs:
  """Variable BPTT epochs: plans and step counts per epoch, and the map from
  a global step to (epoch, start). Counts are computed once per epoch (one
  vectorized draw, microseconds) and kept."""

  def __init__(self, row_len: int, seq_len: int, *, seed: int, p_full: float,
               std: float, bucket: int):
    self._plan_args = dict(seed=seed, p_full=p_full, std=std, bucket=bucket)
    self.row_len, self.seq_len = row_len, seq_len
    self._first = [0]  # first global step of epochs 0, 1, ...

  def plan(self, epoch: int) -> list[BpttWindow]:
    return epoch_plan(self.row_len, self.seq_len, epoch=epoch,
                      **self._plan_args)

  def steps_in_epoch(self, epoch: int) -> int:
    return self.first_step(epoch + 1) - self.first_step(epoch)

  def first_step(self, epoch: int) -> int:
    while len(self._first) <= epoch:
      self._first.append(self._first[-1] + len(self.plan(len(self._first) - 1)))
    return self._first[epoch]

  def locate(self, step: int) -> tuple[int, int]:
    if step < 0:
      raise ValueError(f'step={step} must be >= 0')
    while self._first[-1] <= step:
      self.first_step(len(self._first))
    epoch = bisect.bisect_right(self._first, step) - 1
    return epoch, step - self._first[epoch]


def windows(stream: np.ndarray, batch_size: int, plan: list[BpttWindow], *,
            start: int = 0, rows: tuple[int, int] | None = None
            ) -> Iterator[Batch]:
  """Batches of `plan[start:]`: inputs/targets int32, mask f32, [b-a, length].

  A window running past the row's last input position (the epoch's last) is
  padded: inputs/targets 0 and mask 0 there.
  rows: (a, b), this process' rows of the global batch, as data.bptt_windows.
  """
  a, b = check_rows(rows, batch_size)
  length = len(stream) // batch_size
  table = np.asarray(stream)[:batch_size * length].reshape(batch_size, length)
  table = table[a:b]  # a view: a memory-mapped stream is converted per window
  for lo, n in plan[start:]:
    real = max(0, min(n, length - 1 - lo))
    inputs = np.zeros((b - a, n), np.int32)
    targets = np.zeros((b - a, n), np.int32)
    mask = np.zeros((b - a, n), np.float32)
    inputs[:, :real] = table[:, lo:lo + real]
    targets[:, :real] = table[:, lo + 1:lo + real + 1]
    mask[:, :real] = 1.0
    yield Batch(inputs, targets, mask)


def lr_scale(window_length: int, seq_len: int) -> float:
  """AWD's per-step learning-rate factor: length / T."""
  return window_length / seq_len
