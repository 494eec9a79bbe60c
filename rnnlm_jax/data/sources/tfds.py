"""The 'tfds' source: text examples of a TensorFlow Datasets data set.

tensorflow_datasets is imported only here, inside the functions, because the
GPU machines do not have it. Reading prefers tfds' random-access data sources
(array_record / parquet files), which need no TensorFlow; data prepared in the
TFRecord format is read with `tfds.load` when TensorFlow is importable.
Paths (local or gs://) are handed to tfds as they are, which does its own I/O.

Each split's examples are joined in dataset order, one example per line group:
an example that does not end in '\n' gets one, so at word level every line of
every example ends in '<eos>'.
"""

import os
import pathlib
from typing import Iterator, Sequence

from rnnlm_jax.data.corpus import md5_of, RawCorpus, SPLITS
from rnnlm_jax.data.streaming import per_split_plan, regroup, TextSource
from rnnlm_jax.data.errors import DataError


def _first_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return f'{type(e).__name__}: {lines[0] if lines else ""}'


def as_text(value, where: str) -> str:
  if isinstance(value, str):
    return value
  if hasattr(value, 'item') and not isinstance(value, bytes):
    value = value.item()  # numpy scalar from tfds.as_numpy
  if not isinstance(value, bytes):
    raise DataError(f'{where} is a {type(value).__name__}, not text; set '
                    'data.tfds.text_key to a Text feature')
  try:
    return value.decode('utf-8')
  except UnicodeDecodeError as e:
    raise DataError(f'{where} is not UTF-8 (byte offset {e.start})') from None


def _texts(examples, text_key: str, where: str) -> Iterator[str]:
  """Each example's text, ending in '\n'."""
  for i, example in enumerate(examples):
    if text_key not in example:
      raise DataError(f'{where}: data.tfds.text_key={text_key!r} is not a '
                      f'feature; features are {sorted(example)}')
    text = as_text(example[text_key], f'{where} example {i}')
    yield text if text.endswith('\n') else text + '\n'


def _join(examples, text_key: str, where: str) -> str:
  return ''.join(_texts(examples, text_key, where))


def _read_with_data_source(tfds, name, data_dir, splits):
  """{split name: example sequence} via tfds.data_source (no TensorFlow)."""
  sources = tfds.data_source(name, split=list(splits), data_dir=data_dir)
  return dict(zip(splits, sources))


def _read_with_tf(tfds, name, data_dir, splits):
  """{split name: example iterable} via tfds.load (needs TensorFlow)."""
  datasets = tfds.load(name, split=list(splits), data_dir=data_dir)
  return {s: tfds.as_numpy(ds) for s, ds in zip(splits, datasets)}


def _tf_available() -> bool:
  try:
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  return True


def read_splits(name: str, data_dir: str | None, splits: Sequence[str]):
  """{split name: examples}; every tfds failure becomes a one-line DataError."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  where = f'data.tfds.name={name!r} (data.tfds.data_dir={data_dir or ""!r})'
  try:
    return _read_with_data_source(tfds, name, data_dir, splits)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(f'{where}: no such tfds dataset; check the name (see '
                    'tfds.list_builders()) or the data_dir') from None
  except NotImplementedError as e:
    # Prepared as TFRecord: random access is impossible, stream it with TF.
    if not _tf_available():
      raise DataError(
          f'{where}: {_first_line(e)}; without TensorFlow the data must be '
          "prepared with file_format='array_record'") from None
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'{where}: {_first_line(e)}') from None
  try:
    return _read_with_tf(tfds, name, data_dir, splits)
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'{where}: {_first_line(e)}') from None


def _check_args(name: str, splits: Sequence[str]) -> tuple[str, ...]:
  if not name:
    raise DataError("data.tfds.name is empty; set it, e.g. 'tiny_shakespeare'")
  splits = tuple(splits)
  if len(splits) != 3:
    raise DataError(f'data.tfds.splits={splits} must name 3 splits (train, '
                    'valid, test), e.g. ("train", "validation", "test")')
  return splits


def load_raw(name: str, data_dir: str, text_key: str,
             splits: Sequence[str]) -> RawCorpus:
  """The three splits `splits` (train, valid, test order) of tfds `name`."""
  splits = _check_args(name, splits)
  examples = read_splits(name, data_dir or None, splits)
  texts = {ours: _join(examples[theirs], text_key, f'tfds {name}[{theirs}]')
           for ours, theirs in zip(SPLITS, splits)}
  fingerprint = md5_of(['tfds', name, text_key]
                       + [x for s in SPLITS for x in (s, texts[s])])
  return RawCorpus(name=f'tfds:{name}', texts=texts, fingerprint=fingerprint)


def _local_listing(name: str, data_dir: str) -> list[str]:
  """'path:size:mtime' of the prepared files of `name` when they are local.

  Remote data dirs (gs://) are named only: a prepared tfds version does not
  change, and a new one is a new directory the name (e.g. 'lm1b:1.1.0') selects.
  """
  root = data_dir or os.path.join('~', 'tensorflow_datasets')
  if '://' in root:
    return []
  folder = pathlib.Path(os.path.expanduser(root)) / name.split(':')[0]
  listing = []
  for dirpath, _, filenames in sorted(os.walk(folder)):
    for f in sorted(filenames):
      st = os.stat(os.path.join(dirpath, f))
      listing.append(f'{os.path.join(dirpath, f)}:{st.st_size}:{st.st_mtime_ns}')
  return listing


def stream_source(name: str, data_dir: str, text_key: str,
                  splits: Sequence[str]) -> TextSource:
  """tfds `name` as a TextSource: examples are read when first iterated."""
  splits = _check_args(name, splits)
  opened = {}

  def chunks(split):
    if not opened:  # imports tfds: only when the text is read
      opened.update(read_splits(name, data_dir or None, splits))
    theirs = splits[SPLITS.index(split)]
    return regroup(_texts(opened[theirs], text_key, f'tfds {name}[{theirs}]'))

  identity = md5_of(['tfds', name, data_dir, text_key, *splits]
                    + _local_listing(name, data_dir))
  return TextSource(name=f'tfds:{name}', identity=identity, chunks=chunks,
                    fingerprint_plan=per_split_plan(['tfds', name, text_key]))
