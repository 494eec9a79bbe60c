"""Many variable-length id sequences as one flat array plus offsets.

RaggedIds reads them (from memory or a memory map) wherever a tuple of id
arrays is expected; RaggedWriter builds them one sequence at a time, in
memory or straight into two files, so encoding a corpus never holds one
Python object per sentence:
  <stem>.ids       flat ids, uint16 / uint32 (the width of the vocabulary)
  <stem>.offsets   int64 [n + 1]: sequence i is ids[o[i]:o[i+1]]
"""

import array
import os
import pathlib
from typing import Sequence

import numpy as np

# Ids buffered before they are packed at the dtype's width (and a file
# writer appends them to its file).
FLUSH_TOKENS = 1 << 20


class RaggedIds(Sequence):
  """A read-only sequence of int32 id arrays over flat ids and offsets."""

  def __init__(self, flat: np.ndarray, offsets: np.ndarray):
    self._flat, self._offsets = flat, offsets

  def __len__(self) -> int:
    return len(self._offsets) - 1

  def __getitem__(self, i):
    if isinstance(i, slice):
      start, stop, step = i.indices(len(self))
      if step != 1:
        raise ValueError('RaggedIds slices take step 1 only')
      return RaggedIds(self._flat, self._offsets[start:max(stop, start) + 1])
    if i < 0:
      i += len(self)
    if not 0 <= i < len(self):
      raise IndexError(i)
    ids = np.asarray(self._flat[self._offsets[i]:self._offsets[i + 1]], np.int32)
    ids.setflags(write=False)
    return ids

  def lengths(self) -> np.ndarray:
    """int64 [n]: the length of every sequence, without reading the ids."""
    return np.diff(self._offsets)


def _typecode(dtype: np.dtype) -> str:
  for code in ('H', 'I', 'L'):
    if array.array(code).itemsize == dtype.itemsize:
      return code
  raise ValueError(f'no array typecode for {dtype}')


class RaggedWriter:
  """Appends id sequences; finish() gives the RaggedIds (in memory) or, with
  `directory`, writes `<stem>.ids` / `<stem>.offsets` there and returns
  their paths.

  Memory: 8 bytes per sequence for the offsets, plus the ids themselves in
  memory (at the dtype's width) or, writing files, at most FLUSH_TOKENS of
  them buffered.
  """

  def __init__(self, dtype: np.dtype, directory: str | os.PathLike | None = None,
               stem: str = ''):
    self.dtype = np.dtype(dtype)
    if self.dtype.kind != 'u':
      raise ValueError(f'ids are unsigned; got {self.dtype}')
    self._ids = array.array(_typecode(self.dtype))
    self._offsets = array.array('q', [0])
    self._pending, self._pending_tokens = [], 0  # packed in one numpy call
    self._tokens = 0
    self._file = None
    if directory is not None:
      self.paths = (pathlib.Path(directory) / f'{stem}.ids',
                    pathlib.Path(directory) / f'{stem}.offsets')
      self._file = open(self.paths[0], 'wb')

  def append(self, ids: np.ndarray) -> None:
    """Adds one sequence: a 1-D array of ids in [0, the dtype's max]
    (checked when packed)."""
    n = len(ids)
    self._pending.append(ids)
    self._pending_tokens += n
    self._tokens += n
    self._offsets.append(self._tokens)
    if self._pending_tokens >= FLUSH_TOKENS:
      self._pack()

  def __len__(self) -> int:
    return len(self._offsets) - 1

  def _pack(self) -> None:
    """Moves the pending sequences into the ids (and the file, if any)."""
    if self._pending:
      flat = np.concatenate(self._pending)
      if flat.size and (flat.min() < 0 or flat.max() > np.iinfo(self.dtype).max):
        raise ValueError(f'ids outside {self.dtype}')
      self._ids.frombytes(flat.astype(self.dtype).tobytes())
      self._pending, self._pending_tokens = [], 0
    if self._file is not None:
      self._ids.tofile(self._file)
      self._ids = array.array(self._ids.typecode)

  def finish(self):
    """RaggedIds in memory; with a directory, (ids path, offsets path)."""
    self._pack()
    offsets = np.frombuffer(self._offsets, np.int64)
    if self._file is None:
      flat = np.frombuffer(self._ids, self.dtype)
      flat.setflags(write=False)
      offsets.setflags(write=False)
      return RaggedIds(flat, offsets)
    for f, data in ((self._file, None), (open(self.paths[1], 'wb'), offsets)):
      with f:
        if data is not None:
          f.write(data.tobytes())
        f.flush()
        os.fsync(f.fileno())
    return self.paths
