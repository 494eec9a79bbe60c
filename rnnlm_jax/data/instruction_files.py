"""The 'instructions' pair format: local instruction-tuning files.

One file per split in data.path, `{stem}.jsonl[.gz]` (one JSON object per
line) or `{stem}.json[.gz]` (a JSON array of objects), the stems found as for
the 'jsonl' format (paired_sources.split_stems / resolve_stem; a .jsonl file
wins over a .json one of the same split). Record formats:
  * 'alpaca': instruction, input, output   (Stanford Alpaca, Code Alpaca)
  * 'dolly':  instruction, context, response  (databricks-dolly-15k)
or explicit keys (instruction_key / input_key / output_key override the
format's). The prompt (RawPairs source) is the instruction, plus '\\n\\n' and
the input when that is not empty; the target is the output. The input key may
be missing (no input). Every bad record is a one-line DataError naming the
file and line (JSONL) or record index (JSON): invalid JSON, a missing key, a
value that is not a string, an empty instruction or output.
"""

import json
import pathlib
from typing import Mapping

from rnnlm_jax.data import paired_sources
from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError

RECORD_FORMATS = {
    'alpaca': ('instruction', 'input', 'output'),
    'dolly': ('instruction', 'context', 'response'),
}


def defaults() -> dict:
  """This format's settings (keys of paired.defaults())."""
  return dict(record_format='alpaca', instruction_key='', input_key='',
              output_key='')


def record_keys(record_format: str, instruction_key: str = '',
                input_key: str = '', output_key: str = '') -> tuple:
  """(instruction, input, output) keys: the format's, overridden."""
  if record_format not in RECORD_FORMATS:
    raise DataError(f'data.paired.record_format={record_format!r} is not one '
                    f'of {tuple(RECORD_FORMATS)}')
  keys = RECORD_FORMATS[record_format]
  return (instruction_key or keys[0], input_key or keys[1],
          output_key or keys[2])


def _text(record, key: str, where: str, required: bool) -> str:
  if not isinstance(record, dict):
    raise DataError(f'{where} is a JSON {type(record).__name__}, not an '
                    'object')
  if key not in record:
    if not required:
      return ''
    raise DataError(f'{where} has no key {key!r} (keys there: '
                    f'{sorted(record)}); set data.paired.record_format or '
                    'data.paired.instruction_key / output_key')
  value = record[key]
  if not isinstance(value, str):
    raise DataError(f'{where}: {key!r} is a {type(value).__name__}, not a '
                    'string')
  if required and not value.strip():
    raise DataError(f'{where}: {key!r} is empty; remove the record')
  return value


def to_pair(record, keys: tuple, where: str) -> tuple[str, str]:
  """(prompt, response) of one record; bad records: DataError at `where`."""
  instruction = _text(record, keys[0], where, True).strip()
  extra = _text(record, keys[1], where, False).strip()
  response = _text(record, keys[2], where, True)
  prompt = f'{instruction}\n\n{extra}' if extra else instruction
  return prompt, response


def _records(file: pathlib.Path):
  """(where, record) of each record of a .jsonl or .json file."""
  lines = paired_sources.read_lines(file)
  if '.jsonl' in file.suffixes:
    for i, line in enumerate(lines):
      where = f'{file}:{i + 1}'
      if not line.strip():
        raise DataError(f'{where} is an empty line; every line must hold '
                        'one JSON object')
      try:
        yield where, json.loads(line)
      except json.JSONDecodeError as e:
        raise DataError(f'{where} is not valid JSON ({e.msg} at column '
                        f'{e.colno})') from None
    return
  try:
    data = json.loads('\n'.join(lines))
  except json.JSONDecodeError as e:
    raise DataError(f'{file}:{e.lineno} is not valid JSON ({e.msg} at '
                    f'column {e.colno})') from None
  if not isinstance(data, list):
    raise DataError(f'{file} holds a JSON {type(data).__name__}; it must be '
                    'an array of records (or use .jsonl, one per line)')
  for i, record in enumerate(data):
    yield f'{file} record {i}', record


def _split_file(directory: pathlib.Path, split: str, stems) -> pathlib.Path:
  errors = []
  for suffix in ('jsonl', 'json'):
    try:
      stem = paired_sources.resolve_stem(directory, split, stems, suffix)
    except DataError as e:
      errors.append(str(e))
      continue
    return paired_sources.existing_file(directory, stem, suffix)
  raise DataError(errors[0].replace('.jsonl[.gz]', '.jsonl[.gz] / .json[.gz]',
                                    1))


def load_instructions(path: str, record_format: str = 'alpaca',
                      instruction_key: str = '', input_key: str = '',
                      output_key: str = '',
                      stems: Mapping | None = None
                      ) -> paired_sources.RawPairs:
  """RawPairs (prompt, response) of the instruction files in `path`."""
  directory = paired_sources.data_directory(path)
  keys = record_keys(record_format, instruction_key, input_key, output_key)
  stems = paired_sources.split_stems(stems)
  source, target = {}, {}
  parts, records = ['instructions', *keys], {}
  for split in SPLITS:
    file = _split_file(directory, split, stems[split])
    pairs = [to_pair(record, keys, where) for where, record in _records(file)]
    if not pairs:
      raise DataError(f'{file} holds no records')
    source[split] = [p for p, _ in pairs]
    target[split] = [r for _, r in pairs]
    records[split] = len(pairs)
    parts += [split, file.name] + [x for pair in pairs for x in pair]
  info = dict(format='instructions', keys=list(keys), records=records)
  return paired_sources.RawPairs(name=directory.name, source=source,
                                 target=target, fingerprint=md5_of(parts),
                                 info=info)


paired_sources.PAIR_FORMATS.register(
    'instructions', lambda s: load_instructions(
        s['path'], s['record_format'], s['instruction_key'], s['input_key'],
        s['output_key'], s['split_stems']))
