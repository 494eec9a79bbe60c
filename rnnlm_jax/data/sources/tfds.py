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

from typing import Sequence

from rnnlm_jax.data.corpus import md5_of, RawCorpus, SPLITS
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


def _join(examples, text_key: str, where: str) -> str:
  parts = []
  for i, example in enumerate(examples):
    if text_key not in example:
      raise DataError(f'{where}: data.tfds.text_key={text_key!r} is not a '
                      f'feature; features are {sorted(example)}')
    text = as_text(example[text_key], f'{where} example {i}')
    parts.append(text if text.endswith('\n') else text + '\n')
  return ''.join(parts)


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


def load_raw(name: str, data_dir: str, text_key: str,
             splits: Sequence[str]) -> RawCorpus:
  """The three splits `splits` (train, valid, test order) of tfds `name`."""
  if not name:
    raise DataError("data.tfds.name is empty; set it, e.g. 'tiny_shakespeare'")
  splits = tuple(splits)
  if len(splits) != 3:
    raise DataError(f'data.tfds.splits={splits} must name 3 splits (train, '
                    'valid, test), e.g. ("train", "validation", "test")')
  examples = read_splits(name, data_dir or None, splits)
  texts = {ours: _join(examples[theirs], text_key, f'tfds {name}[{theirs}]')
           for ours, theirs in zip(SPLITS, splits)}
  fingerprint = md5_of(['tfds', name, text_key]
                       + [x for s in SPLITS for x in (s, texts[s])])
  return RawCorpus(name=f'tfds:{name}', texts=texts, fingerprint=fingerprint)
