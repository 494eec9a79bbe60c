"""Readers of sentence pairs: parallel text files, JSONL, TFDS translation sets.

Each reader returns RawPairs: per split the source and the target sentences,
position i of one translating position i of the other. Every problem with the
input is a one-line DataError naming the file and line:
  * parallel files: `{stem}.{lang}` or `{stem}.{lang}.gz` in one directory
    (Multi30k: train.de.gz / train.en.gz, val.*, test_2016_flickr.*), one
    sentence per line;
  * JSONL: `{stem}.jsonl[.gz]`, one object per line, the two sentences under
    configurable keys (dotted keys reach into nested objects, e.g.
    'translation.de' for Hugging Face exports);
  * TFDS: a translation dataset such as 'wmt14_translate/de-en', whose
    features are the language codes; tensorflow_datasets is imported lazily
    (by sources/tfds.py), only when this reader is used.

PAIR_FORMATS maps the config value data.paired.format to a reader
`(settings dict) -> RawPairs` (settings: paired.defaults() keys); other
modules register further formats (code_instructions.py, instruction_files.py).
"""

import dataclasses
import fnmatch
import gzip
import json
import pathlib
import zlib
from typing import Mapping, Sequence

from rnnlm_jax import registry
from rnnlm_jax.data import line_files
from rnnlm_jax.data import streaming
from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.sources import tfds as tfds_source

# Candidate file stems per split, tried in order; a glob pattern must match
# exactly one stem. Multi30k's test split is test_2016_flickr (the 2017 test
# sets, when present, are other splits).
DEFAULT_SPLIT_STEMS = {
    'train': ('train',),
    'valid': ('val', 'valid', 'dev'),
    'test': ('test', 'test_2016_flickr', 'test*'),
}
TFDS_SPLITS = ('train', 'validation', 'test')


@dataclasses.dataclass(frozen=True)
class RawPairs:
  """What a pair reader produces.

  Attributes:
    name: corpus name, e.g. 'multi30k' or 'tfds:wmt14_translate/de-en'.
    source, target: {split: sequence of sentences (a list, or one of
      line_files' sequences streamed from disk)}, equal lengths per split.
    fingerprint: md5 of the sentences and where they came from.
    info: what the reader wants to report beside the pairs (JSON-able),
      e.g. counts and versions of the code a code corpus was extracted from;
      carried into PairedCorpus.info and the run's results.
  """
  name: str
  source: Mapping[str, list]
  target: Mapping[str, list]
  fingerprint: str
  info: Mapping = dataclasses.field(default_factory=dict)


def split_stems(overrides: Mapping | None = None) -> dict[str, tuple]:
  """DEFAULT_SPLIT_STEMS with `overrides` ({split: stem or stems}) applied."""
  stems = dict(DEFAULT_SPLIT_STEMS)
  for split, value in dict(overrides or {}).items():
    if split not in SPLITS:
      raise DataError(f'data.split_stems key {split!r} is not one of {SPLITS}')
    value = (value,) if isinstance(value, str) else tuple(value)
    if not value or not all(isinstance(v, str) and v for v in value):
      raise DataError(f'data.split_stems[{split!r}]={value!r} must be a '
                      'non-empty file stem or tuple of stems')
    stems[split] = value
  return stems


def read_lines(path: pathlib.Path) -> list[str]:
  """Lines of a UTF-8 text file (gzip-compressed or plain), '\\n' removed.

  Bad input raises DataError: unreadable, not gzip despite the magic bytes,
  binary (NUL byte), not UTF-8 (naming the line), or empty.
  """
  try:
    data = path.read_bytes()
  except OSError as e:
    raise DataError(f'cannot read {path}: {e.strerror or e}') from None
  if data[:2] == b'\x1f\x8b':
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
      raise DataError(f'{path} is not a valid gzip file ({e}); re-compress '
                      'it or store it uncompressed') from None
  nul = data.find(b'\x00')
  if nul >= 0:
    line = data.count(b'\n', 0, nul) + 1
    raise DataError(f'{path}:{line} has a NUL byte: '
                    'the file looks binary; it must be UTF-8 text')
  try:
    text = data.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    line = data.count(b'\n', 0, e.start) + 1
    raise DataError(f'{path}:{line} is not UTF-8 (bad byte '
                    f'0x{data[e.start]:02x}); re-encode the file as UTF-8'
                    ) from None
  if not text.strip():
    raise DataError(f'{path} is empty; it must hold one sentence per line')
  return text_lib.split_lines(text.replace('\r\n', '\n').replace('\r', '\n'))


def existing_file(directory: pathlib.Path, stem: str, suffix: str):
  """The file {stem}.{suffix} or {stem}.{suffix}.gz, or None; both: error."""
  plain = directory / f'{stem}.{suffix}'
  packed = directory / f'{stem}.{suffix}.gz'
  if plain.is_file() and packed.is_file():
    raise DataError(f'both {plain} and {packed} exist; keep one of them')
  return plain if plain.is_file() else packed if packed.is_file() else None


def _stems_with(directory: pathlib.Path, suffix: str) -> list[str]:
  stems = set()
  for p in directory.iterdir():
    for end in (f'.{suffix}', f'.{suffix}.gz'):
      if p.is_file() and p.name.endswith(end):
        stems.add(p.name[:-len(end)])
  return sorted(stems)


def resolve_stem(directory: pathlib.Path, split: str, candidates: Sequence[str],
                 suffix: str) -> str:
  """The first candidate stem with a `{stem}.{suffix}[.gz]` file."""
  present = _stems_with(directory, suffix)
  for cand in candidates:
    if any(c in cand for c in '*?['):
      matches = [s for s in present if fnmatch.fnmatchcase(s, cand)]
      if len(matches) > 1:
        raise DataError(
            f'{directory}: the {split} split pattern {cand!r} matches several '
            f'files {[f"{m}.{suffix}" for m in matches]}; choose one with '
            f'data.split_stems={{{split!r}: {matches[0]!r}}}')
      if matches:
        return matches[0]
    elif cand in present:
      return cand
  expected = directory / f'{candidates[0]}.{suffix}'
  raise DataError(f'{expected}[.gz] does not exist (no {split} file among the '
                  f'stems {list(candidates)}; stems with .{suffix} here: '
                  f'{present}); set data.split_stems or data.path')


def data_directory(path: str) -> pathlib.Path:
  if not path:
    raise DataError('data.path is empty; set it to the directory of the '
                    'parallel files')
  p = pathlib.Path(path).expanduser()
  if not p.is_dir():
    raise DataError(f'data.path={path!r} is not a directory; point it at the '
                    'directory of the parallel files')
  return p


def load_files(path: str, source_lang: str, target_lang: str,
               stems: Mapping | None = None) -> RawPairs:
  """Parallel text files `{stem}.{lang}[.gz]` of directory `path`.

  The train split stays on disk (line_files.TextLines, streamed on every
  pass); valid and test are read into lists (random access, small)."""
  directory = data_directory(path)
  stems = split_stems(stems)
  source, target, parts = {}, {}, ['files']
  for split in SPLITS:
    stem = resolve_stem(directory, split, stems[split], source_lang)
    src_path = existing_file(directory, stem, source_lang)
    tgt_path = existing_file(directory, stem, target_lang)
    if tgt_path is None:
      raise DataError(f'{directory / f"{stem}.{target_lang}"}[.gz] does not '
                      f'exist: {src_path.name} has no {target_lang!r} side')
    src, tgt = line_files.TextLines(src_path), line_files.TextLines(tgt_path)
    if len(src) != len(tgt):
      raise DataError(f'{src_path} has {len(src):,} lines but {tgt_path} has '
                      f'{len(tgt):,}; line i of one must translate line i of '
                      'the other')
    streamed = split == 'train'
    source[split] = src if streamed else list(src)
    target[split] = tgt if streamed else list(tgt)
    parts += [split, src_path.name, src.md5, tgt_path.name, tgt.md5]
  return RawPairs(name=directory.name, source=source, target=target,
                  fingerprint=md5_of(parts))


def _lookup(obj, key: str, where: str) -> str:
  value = obj
  for part in key.split('.'):
    if not isinstance(value, dict) or part not in value:
      keys = sorted(value) if isinstance(value, dict) else type(value).__name__
      raise DataError(f'{where} has no key {key!r} (keys there: {keys}); set '
                      'data.source_key / data.target_key')
    value = value[part]
  if not isinstance(value, str):
    raise DataError(f'{where}: {key!r} is a {type(value).__name__}, not a '
                    'string')
  if not value.strip():
    raise DataError(f'{where}: {key!r} is an empty sentence; remove the pair')
  return value


def load_jsonl(path: str, source_key: str, target_key: str,
               stems: Mapping | None = None) -> RawPairs:
  """JSONL files `{stem}.jsonl[.gz]`, sentences under source/target_key.

  Every line is parsed and checked once here; the train split then stays
  on disk (line_files.MappedLines, parsed again on every pass), valid and
  test are read into lists."""
  directory = data_directory(path)
  if not source_key or not target_key:
    raise DataError(f'data.source_key={source_key!r} and data.target_key='
                    f'{target_key!r} must name the JSON keys of the sentences')
  stems = split_stems(stems)
  source, target, parts = {}, {}, ['jsonl', source_key, target_key]
  for split in SPLITS:
    file = existing_file(directory, resolve_stem(directory, split, stems[split],
                                             'jsonl'), 'jsonl')
    lines = line_files.TextLines(file)
    for i, line in enumerate(lines):
      obj = _json_object(line, f'{file}:{i + 1}')
      _lookup(obj, source_key, f'{file}:{i + 1}')
      _lookup(obj, target_key, f'{file}:{i + 1}')
    field = lambda key, file=file: (
        lambda line: _lookup(json.loads(line), key, str(file)))
    src = line_files.MappedLines(lines, field(source_key))
    tgt = line_files.MappedLines(lines, field(target_key))
    streamed = split == 'train'
    source[split] = src if streamed else list(src)
    target[split] = tgt if streamed else list(tgt)
    parts += [split, file.name, lines.md5]
  return RawPairs(name=directory.name, source=source, target=target,
                  fingerprint=md5_of(parts))


def _json_object(line: str, where: str):
  try:
    return json.loads(line)
  except json.JSONDecodeError as e:
    raise DataError(f'{where} is not valid JSON ({e.msg} at column '
                    f'{e.colno})') from None


def load_tfds(name: str, data_dir: str, source_lang: str, target_lang: str,
              splits: Sequence[str] = TFDS_SPLITS) -> RawPairs:
  """A TFDS translation dataset, e.g. 'wmt14_translate/de-en'.

  Every example is checked once here; the train split is then read again
  from the prepared files on every pass (line_files.Streamed), valid and
  test are read into lists."""
  if not name:
    raise DataError("data.tfds.name is empty; set it, e.g. "
                    "'wmt14_translate/de-en'")
  splits = tuple(splits)
  if len(splits) != 3:
    raise DataError(f'data.tfds.splits={splits} must name 3 splits (train, '
                    'valid, test), e.g. ("train", "validation", "test")')
  examples = tfds_source.read_splits(name, data_dir or None, splits)
  source, target, parts = {}, {}, ['tfds', name, source_lang, target_lang]
  for ours, theirs in zip(SPLITS, splits):
    where = f'tfds {name}[{theirs}] example'
    hashes, count = [streaming.JoinedLinesMd5(), streaming.JoinedLinesMd5()], 0
    for count, example in enumerate(examples[theirs], 1):  # checked once
      for md5, lang in zip(hashes, (source_lang, target_lang)):
        md5.add(_tfds_sentence(example, lang, f'{where} {count - 1}'))
    src, tgt = (line_files.Streamed(
        lambda lang=lang, split=theirs: (_tfds_sentence(x, lang, where)
                                         for x in examples[split]), count)
                for lang in (source_lang, target_lang))
    streamed = ours == 'train'
    source[ours] = src if streamed else list(src)
    target[ours] = tgt if streamed else list(tgt)
    parts += [ours] + [md5.hexdigest() for md5 in hashes]
  return RawPairs(name=f'tfds:{name}', source=source, target=target,
                  fingerprint=md5_of(parts))


def _tfds_sentence(example, lang: str, where: str) -> str:
  if lang not in example:
    raise DataError(f'{where}: language {lang!r} is not a feature; '
                    f'features are {sorted(example)}; set '
                    'data.source_lang / data.target_lang')
  sentence = tfds_source.as_text(example[lang], f'{where} [{lang!r}]')
  if not sentence.strip():
    raise DataError(f'{where}: the {lang!r} sentence is empty')
  return sentence.strip()


# data.paired.format -> (settings dict, the keys of paired.defaults()) ->
# RawPairs.
PAIR_FORMATS = registry.Registry('data.paired.format')
PAIR_FORMATS.register('files', lambda s: load_files(
    s['path'], s['source_lang'], s['target_lang'], s['split_stems']))
PAIR_FORMATS.register('jsonl', lambda s: load_jsonl(
    s['path'], s['source_key'] or s['source_lang'],
    s['target_key'] or s['target_lang'], s['split_stems']))
PAIR_FORMATS.register('tfds', lambda s: load_tfds(
    s['tfds_name'], s['tfds_data_dir'], s['source_lang'], s['target_lang'],
    s['tfds_splits']))
