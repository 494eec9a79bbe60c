"""Stream-mode batching: truncated-BPTT windows over a token stream.

The Zaremba / TF PTB reader layout: the stream is trimmed to B*L tokens and
reshaped to [B, L], so row b is the b-th contiguous chunk of the corpus and
window i of row b continues window i-1 of row b. The model therefore carries
its hidden state from one window to the next.
"""

from typing import Iterator, NamedTuple

import numpy as np

from rnnlm_jax.data.errors import DataError


class Batch(NamedTuple):
  """One batch; all arrays have the same [B, T] shape.

  inputs: int32 [B, T] token ids.
  targets: int32 [B, T] the next token of each input.
  mask: float32 [B, T] 1.0 for real targets, 0.0 for padding.
  """
  inputs: np.ndarray
  targets: np.ndarray
  mask: np.ndarray

  @property
  def model_inputs(self):
    """What a language model is called on: the input tokens."""
    return self.inputs


def check_rows(rows, batch_size: int) -> tuple[int, int]:
  """Validated (a, b) row range; None means all rows."""
  if rows is None:
    return 0, batch_size
  a, b = (int(r) for r in rows)
  if not 0 <= a < b <= batch_size:
    raise DataError(f'rows={tuple(rows)} must satisfy 0 <= a < b <= '
                    f'batch_size={batch_size}')
  return a, b


def check_start(start: int, num_batches: int) -> int:
  if not 0 <= start <= num_batches:
    raise DataError(f'start={start} is outside the {num_batches} batches of '
                    'this epoch; it must be in [0, num_batches]')
  return int(start)


def num_bptt_windows(num_tokens: int, batch_size: int, seq_len: int,
                     drop_last: bool = True) -> int:
  """Number of windows bptt_windows yields for a stream of num_tokens."""
  if batch_size < 1 or seq_len < 1:
    raise DataError(f'batch_size={batch_size} and seq_len={seq_len} must be '
                    '>= 1')
  steps = num_tokens // batch_size - 1  # targets per row
  if steps <= 0:
    return 0
  return steps // seq_len if drop_last else -(-steps // seq_len)


def bptt_windows(stream: np.ndarray, batch_size: int, seq_len: int, *,
                 drop_last: bool = True, start: int = 0,
                 rows: tuple[int, int] | None = None) -> Iterator[Batch]:
  """Yields truncated-BPTT windows over `stream`.

  Args:
    stream: int [N] token ids.
    batch_size: B, the global number of rows.
    seq_len: T, the window length.
    drop_last: True: only full windows ((L-1)//T of them, L = N//B).
      False: also a last shorter window, padded to T with mask 0, so that each
      of the B*(L-1) targets is counted exactly once.
    start: skip the first `start` windows (resuming mid-epoch).
    rows: (a, b): yield only rows a:b of each window (this process' shard of
      the global batch); equal to the full batch sliced [a:b].

  Yields:
    Batch of int32 inputs/targets and float32 mask, each [b-a, T].
  """
  stream = np.asarray(stream)
  num = num_bptt_windows(len(stream), batch_size, seq_len, drop_last)
  if num == 0:
    need = batch_size * (seq_len + 1 if drop_last else 2)
    raise DataError(
        f'the stream has {len(stream):,} tokens but batch_size={batch_size} x '
        f'seq_len={seq_len} needs at least {need:,}; use a smaller '
        'batch_size or seq_len (or raise data.max_*_tokens)')
  a, b = check_rows(rows, batch_size)
  start = check_start(start, num)
  length = len(stream) // batch_size
  data = stream[:batch_size * length].reshape(batch_size, length)[a:b]
  for i in range(start, num):
    lo = i * seq_len
    n = min(seq_len, length - 1 - lo)  # < seq_len only for the last window
    inputs = np.zeros((b - a, seq_len), dtype=np.int32)
    targets = np.zeros((b - a, seq_len), dtype=np.int32)
    mask = np.zeros((b - a, seq_len), dtype=np.float32)
    inputs[:, :n] = data[:, lo:lo + n]
    targets[:, :n] = data[:, lo + 1:lo + n + 1]
    mask[:, :n] = 1.0
    yield Batch(inputs, targets, mask)
