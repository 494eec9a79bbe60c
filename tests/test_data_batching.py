"""Stream (TBPTT) and sentence batching."""

import numpy as np
import pytest

from rnnlm_jax.data import (DataError, bptt_windows, num_bptt_windows,
                            num_sentence_batches, sentence_batches)

STREAM = np.arange(1000, dtype=np.int32)  # ids = positions: easy to check


def test_bptt_shapes_and_shift():
  batches = list(bptt_windows(STREAM, batch_size=4, seq_len=7))
  # L = 250 tokens per row, (L - 1) // T = 35 windows.
  assert len(batches) == num_bptt_windows(1000, 4, 7) == 35
  for batch in batches:
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape
    assert batch.inputs.shape == (4, 7)
    assert batch.inputs.dtype == batch.targets.dtype == np.int32
    assert batch.mask.dtype == np.float32 and batch.mask.all()
    np.testing.assert_array_equal(batch.targets, batch.inputs + 1)


def test_bptt_rows_are_contiguous_chunks():
  batches = list(bptt_windows(STREAM, batch_size=4, seq_len=7))
  rows = np.concatenate([b.inputs for b in batches], axis=1)
  # Row b continues itself from window to window and starts at b * L.
  np.testing.assert_array_equal(rows[:, 0], [0, 250, 500, 750])
  np.testing.assert_array_equal(np.diff(rows, axis=1), 1)


@pytest.mark.parametrize('n, batch_size, seq_len', [
    (1000, 4, 7), (1003, 3, 10), (101, 5, 19), (64, 2, 31)])
def test_bptt_no_drop_counts_every_target_once(n, batch_size, seq_len):
  stream = np.arange(n, dtype=np.int32)
  batches = list(bptt_windows(stream, batch_size, seq_len, drop_last=False))
  assert len(batches) == num_bptt_windows(n, batch_size, seq_len, False)
  length = n // batch_size
  targets = np.concatenate([b.targets[b.mask > 0] for b in batches])
  assert len(targets) == batch_size * (length - 1)
  expected = np.arange(batch_size * length).reshape(batch_size, length)[:, 1:]
  np.testing.assert_array_equal(np.sort(targets), np.sort(expected.ravel()))
  for b in batches:
    assert b.inputs.shape == (batch_size, seq_len)
    np.testing.assert_array_equal(b.targets[b.mask > 0],
                                  b.inputs[b.mask > 0] + 1)
    assert (b.targets[b.mask == 0] == 0).all()


def test_bptt_start_skips_windows():
  full = list(bptt_windows(STREAM, 4, 7))
  resumed = list(bptt_windows(STREAM, 4, 7, start=30))
  assert len(resumed) == 5
  for a, b in zip(full[30:], resumed):
    np.testing.assert_array_equal(a.inputs, b.inputs)
  assert not list(bptt_windows(STREAM, 4, 7, start=35))
  with pytest.raises(DataError, match='start=36'):
    next(bptt_windows(STREAM, 4, 7, start=36))


@pytest.mark.parametrize('drop_last', [True, False])
def test_bptt_rows_equal_full_batch_slice(drop_last):
  full = list(bptt_windows(STREAM, 8, 9, drop_last=drop_last))
  for a, b in [(0, 2), (2, 4), (6, 8), (0, 8)]:
    shard = list(bptt_windows(STREAM, 8, 9, drop_last=drop_last, rows=(a, b)))
    assert len(shard) == len(full)
    for f, s in zip(full, shard):
      for field in range(3):
        np.testing.assert_array_equal(f[field][a:b], s[field])
  with pytest.raises(DataError, match='rows'):
    next(bptt_windows(STREAM, 8, 9, rows=(4, 9)))


def test_bptt_too_short_stream():
  with pytest.raises(DataError) as info:
    next(bptt_windows(np.arange(100), batch_size=10, seq_len=10))
  message = str(info.value)
  assert '100 tokens' in message and 'batch_size=10' in message
  assert 'smaller' in message and '\n' not in message
  # Exactly B * (T + 1) tokens is enough for one window.
  assert len(list(bptt_windows(np.arange(110), 10, 10))) == 1


# Sentences (boundary 1; padding is 0): [5 6 1] [7 1] [8 9 10 11 1] [12]
# (the last one unterminated).
SENTENCES = np.array([5, 6, 1, 7, 1, 8, 9, 10, 11, 1, 12], dtype=np.int32)


def test_sentence_bos_padding_and_mask():
  (batch,) = list(sentence_batches(SENTENCES, 1, batch_size=4, max_len=4))
  np.testing.assert_array_equal(batch.inputs, [[1, 5, 6, 0],
                                               [1, 7, 0, 0],
                                               [1, 8, 9, 10],
                                               [1, 0, 0, 0]])
  np.testing.assert_array_equal(batch.targets, [[5, 6, 1, 0],
                                                [7, 1, 0, 0],
                                                [8, 9, 10, 11],  # truncated
                                                [12, 0, 0, 0]])
  np.testing.assert_array_equal(batch.mask, [[1, 1, 1, 0],
                                             [1, 1, 0, 0],
                                             [1, 1, 1, 1],
                                             [1, 0, 0, 0]])
  assert batch.inputs.dtype == np.int32 and batch.mask.dtype == np.float32


def test_sentence_counts_drop_last_and_padding():
  assert num_sentence_batches(SENTENCES, 1, 3, 4) == 1
  assert num_sentence_batches(SENTENCES, 1, 3, 4, drop_last=False) == 2
  batches = list(sentence_batches(SENTENCES, 1, 3, 6, drop_last=False))
  assert len(batches) == 2 and batches[1].inputs.shape == (3, 6)
  np.testing.assert_array_equal(batches[1].mask.sum(1), [1, 0, 0])
  total = sum(b.mask.sum() for b in batches)
  assert total == len(SENTENCES)  # nothing truncated at max_len 6
  with pytest.raises(DataError, match='batch_size=5'):
    next(sentence_batches(SENTENCES, 1, 5, 4))


def random_sentences(n, seed=0):
  rng = np.random.default_rng(seed)
  stream = rng.integers(1, 50, size=n).astype(np.int32)
  stream[rng.random(n) < 0.1] = 0
  return stream


def test_sentence_shuffle_is_deterministic():
  stream = random_sentences(3000)
  def targets(seed):
    return np.concatenate([b.targets for b in
                           sentence_batches(stream, 0, 8, 40,
                                            shuffle_seed=seed,
                                            drop_last=False)])
  np.testing.assert_array_equal(targets(1), targets(1))
  assert not np.array_equal(targets(1), targets(2))
  assert not np.array_equal(targets(1), targets(None))
  # A permutation: the same sentences, in another order.
  assert sorted(map(tuple, targets(1))) == sorted(map(tuple, targets(None)))


def test_sentence_start_and_rows():
  stream = random_sentences(3000)
  full = list(sentence_batches(stream, 0, 8, 30, shuffle_seed=3))
  resumed = list(sentence_batches(stream, 0, 8, 30, shuffle_seed=3, start=5,
                                  rows=(2, 6)))
  assert len(full) == num_sentence_batches(stream, 0, 8, 30)
  assert len(resumed) == len(full) - 5
  for f, r in zip(full[5:], resumed):
    for field in range(3):
      np.testing.assert_array_equal(f[field][2:6], r[field])
