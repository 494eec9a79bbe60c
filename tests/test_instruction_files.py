"""The 'instructions' pair format: Alpaca and Dolly JSON / JSONL files."""

import gzip
import json

import pytest

from rnnlm_jax.data import DataError, paired

ALPACA = [
    {'instruction': 'Add two numbers.', 'input': '2 and 3', 'output': '5'},
    {'instruction': 'Say hi.', 'input': '', 'output': 'hi\n'},
]
DOLLY = [
    {'instruction': 'Summarize.', 'context': 'A long text.',
     'response': 'Short.', 'category': 'summarization'},
    {'instruction': 'Name a color.', 'context': '', 'response': 'Red'},
]


def _write(directory, records, json_array, names=('train', 'val', 'test')):
  for name in names:
    if json_array:
      (directory / f'{name}.json').write_text(json.dumps(records, indent=2))
    else:
      (directory / f'{name}.jsonl').write_text(
          ''.join(json.dumps(r) + '\n' for r in records))


@pytest.mark.parametrize('json_array', [True, False])
def test_alpaca(tmp_path, json_array):
  _write(tmp_path, ALPACA, json_array)
  raw = paired.read_pairs('instructions', path=str(tmp_path))
  for split in ('train', 'valid', 'test'):
    assert raw.source[split] == ['Add two numbers.\n\n2 and 3', 'Say hi.']
    assert raw.target[split] == ['5', 'hi\n']
  assert raw.info['records'] == {'train': 2, 'valid': 2, 'test': 2}


@pytest.mark.parametrize('json_array', [True, False])
def test_dolly(tmp_path, json_array):
  _write(tmp_path, DOLLY, json_array)
  raw = paired.read_pairs('instructions', path=str(tmp_path),
                          record_format='dolly')
  assert raw.source['test'] == ['Summarize.\n\nA long text.', 'Name a color.']
  assert raw.target['test'] == ['Short.', 'Red']


def test_explicit_keys_gzip_and_missing_input(tmp_path):
  records = [{'q': 'Why?', 'a': 'Because.'}]
  for name in ('train', 'valid', 'test'):
    (tmp_path / f'{name}.jsonl.gz').write_bytes(
        gzip.compress(json.dumps(records).encode()[1:-1] + b'\n'))
  raw = paired.read_pairs('instructions', path=str(tmp_path),
                          instruction_key='q', output_key='a')
  assert raw.source['valid'] == ['Why?'] and raw.target['valid'] == ['Because.']


def test_fingerprint_follows_the_records(tmp_path):
  _write(tmp_path, ALPACA, False)
  before = paired.read_pairs('instructions', path=str(tmp_path)).fingerprint
  _write(tmp_path, ALPACA[:1], False, names=('test',))
  assert paired.read_pairs('instructions',
                           path=str(tmp_path)).fingerprint != before


@pytest.mark.parametrize('line, message', [
    ('{"instruction": "x", "output": ', r'train.jsonl:2 is not valid JSON'),
    ('{"instruction": "x"}', r"train.jsonl:2 has no key 'output'"),
    ('{"instruction": "x", "output": 3}', r"train.jsonl:2: 'output' is a int"),
    ('{"instruction": " ", "output": "y"}',
     r"train.jsonl:2: 'instruction' is empty"),
    ('{"instruction": "x", "output": ""}', r"train.jsonl:2: 'output' is empty"),
    ('["x", "y"]', r'train.jsonl:2 is a JSON list, not an object'),
])
def test_bad_jsonl_record_names_file_and_line(tmp_path, line, message):
  _write(tmp_path, ALPACA[:1], False)
  (tmp_path / 'train.jsonl').write_text(json.dumps(ALPACA[0]) + '\n' + line)
  with pytest.raises(DataError, match=message):
    paired.read_pairs('instructions', path=str(tmp_path))


def test_bad_json_record_names_the_index(tmp_path):
  _write(tmp_path, ALPACA, True)
  (tmp_path / 'val.json').write_text(json.dumps(ALPACA + [{'input': 'x'}]))
  with pytest.raises(DataError, match=r"val.json record 2 has no key "
                     r"'instruction'"):
    paired.read_pairs('instructions', path=str(tmp_path))
  (tmp_path / 'val.json').write_text('{"a": 1}')
  with pytest.raises(DataError, match='val.json holds a JSON dict'):
    paired.read_pairs('instructions', path=str(tmp_path))
  (tmp_path / 'val.json').write_text('[\n{"a": 1},\n{"b" 2}\n]\n')
  with pytest.raises(DataError, match=r'val.json:3 is not valid JSON'):
    paired.read_pairs('instructions', path=str(tmp_path))


def test_missing_split_file_and_bad_format(tmp_path):
  _write(tmp_path, ALPACA, False, names=('train', 'val'))
  with pytest.raises(DataError, match=r'test.jsonl\[.gz\] / .json\[.gz\] does '
                     'not exist'):
    paired.read_pairs('instructions', path=str(tmp_path))
  with pytest.raises(DataError, match="record_format='vicuna'"):
    paired.read_pairs('instructions', path=str(tmp_path),
                      record_format='vicuna')
