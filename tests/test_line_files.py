"""Streamed line files (data/line_files.py) and ragged ids (data/ragged.py):
the bounded-memory path of paired data."""

import gzip
import json
import hashlib

import numpy as np
import pytest

from rnnlm_jax.data import line_files, paired, paired_sources, ragged, streaming
from rnnlm_jax.data import tokenizers as tok_lib
from rnnlm_jax.data.errors import DataError

TRICKY = ('\ufeffErste Zeile\r\nzweite\rdritte  \n'
          'vierte ünïcödé\n\tfünfte\nletzte ohne Zeilenende').encode('utf-8')


@pytest.mark.parametrize('block_bytes', [3, 7, 1 << 20])  # lines span blocks
@pytest.mark.parametrize('packed', [False, True])
def test_text_lines_are_read_lines_streamed(tmp_path, monkeypatch, packed,
                                            block_bytes):
  monkeypatch.setattr(line_files, 'BLOCK_BYTES', block_bytes)
  path = tmp_path / ('x.txt.gz' if packed else 'x.txt')
  path.write_bytes(gzip.compress(TRICKY) if packed else TRICKY)
  expected = paired_sources.read_lines(path)
  lines = line_files.TextLines(path)
  assert list(lines) == expected and list(lines) == expected  # re-iterable
  assert len(lines) == len(expected) == 6
  assert lines.md5 == hashlib.md5('\n'.join(expected).encode()).hexdigest()
  assert lines[0] == 'Erste Zeile' and lines[-1] == 'letzte ohne Zeilenende'
  assert lines[1:3] == expected[1:3] and lines == expected
  with pytest.raises(IndexError):
    lines[6]  # pylint: disable=pointless-statement


@pytest.mark.parametrize('lines', [[], [''], ['', 'b', ''], ['a', 'bc', 'ü']])
def test_joined_lines_md5_is_the_md5_of_the_joined_lines(lines):
  want = hashlib.md5('\n'.join(lines).encode()).hexdigest()
  one_by_one, in_blocks = streaming.JoinedLinesMd5(), streaming.JoinedLinesMd5()
  for line in lines:
    one_by_one.add(line)
  for block in (lines[:1], [], lines[1:2], lines[2:]):
    in_blocks.extend(block)
  assert one_by_one.hexdigest() == in_blocks.hexdigest() == want


@pytest.mark.parametrize('block_bytes', [4, 1 << 20])
@pytest.mark.parametrize('data, fragment', [
    (b'a\nb\x00c\n', r'x\.txt:2 has a NUL byte'),
    (b'a\nb\nc\xff\n', r'x\.txt:3 is not UTF-8 \(bad byte 0xff\)'),
    (b'line\nlonger line\nok\nbad \xc3(\n', r'x\.txt:4 is not UTF-8'),
    (b'  \n\n', r'x\.txt is empty'),
    (b'a\n \nb\n', r'x\.txt:2 is an empty line'),
    (b'one\ntwo\nthree\n\nfour\n', r'x\.txt:4 is an empty line'),
    (b'\x1f\x8bnot gzip at all', r'x\.txt is not a valid gzip file'),
])
def test_bad_files_are_one_line_errors_naming_file_and_line(
    tmp_path, monkeypatch, data, fragment, block_bytes):
  monkeypatch.setattr(line_files, 'BLOCK_BYTES', block_bytes)
  path = tmp_path / 'x.txt'
  path.write_bytes(data)
  with pytest.raises(DataError, match=fragment):
    line_files.TextLines(path)


def test_a_missing_file_is_one_line(tmp_path):
  with pytest.raises(DataError, match='cannot read .*nothing.txt'):
    line_files.TextLines(tmp_path / 'nothing.txt')


def test_selected_lines_read_only_the_rows_asked_for(tmp_path):
  path = tmp_path / 'x.txt'
  path.write_text(''.join(f' line {i} \n' for i in range(10)), encoding='utf-8')
  lines = line_files.TextLines(path)
  rows = np.array([1, 4, 5, 9])
  picked = line_files.selected_lines(lines, rows)
  expected = ('line 1', 'line 4', 'line 5', 'line 9')
  assert isinstance(picked, line_files.SelectedLines)
  assert tuple(picked) == expected and picked == expected and len(picked) == 4
  assert picked[2] == 'line 5' and picked[1:3] == expected[1:3]
  assert picked[:0] == () and picked != expected[:3]
  assert line_files.selected_lines(list(lines), rows) == expected


@pytest.mark.parametrize('vocab_size', [300, 70_000])
def test_ragged_writer_in_memory_and_to_files_agree(tmp_path, monkeypatch,
                                                    vocab_size):
  monkeypatch.setattr(ragged, 'FLUSH_TOKENS', 5)  # several flushes
  rng = np.random.default_rng(0)
  seqs = [rng.integers(0, vocab_size, size=n) for n in (3, 0, 7, 1, 12, 4)]
  dtype = np.uint16 if vocab_size < 1 << 16 else np.uint32
  memory, files = ragged.RaggedWriter(dtype), ragged.RaggedWriter(
      dtype, tmp_path, 'train.source')
  for s in seqs:
    memory.append(s)
    files.append(s)
  in_memory = memory.finish()
  ids_path, offsets_path = files.finish()
  mapped = ragged.RaggedIds(np.fromfile(ids_path, dtype),
                            np.fromfile(offsets_path, np.int64))
  for got in (in_memory, mapped):
    assert len(got) == len(seqs)
    assert list(got.lengths()) == [len(s) for s in seqs]
    for a, b in zip(got, seqs):
      assert a.dtype == np.int32 and np.array_equal(a, b)
  assert ids_path.name == 'train.source.ids'
  too_wide = ragged.RaggedWriter(np.uint16)
  too_wide.append(np.array([70_000]))
  with pytest.raises(ValueError, match='outside uint16'):
    too_wide.finish()
  empty = ragged.RaggedWriter(np.uint16).finish()
  assert len(empty) == 0 and list(empty) == []


def write_parallel(directory, n):
  """Pair i: 'ein hund {i} .' / 'a dog runs {i} far far ... .' (i % 4 fars)."""
  directory.mkdir()
  for stem in ('train', 'val', 'test'):
    rows = range(n if stem == 'train' else 3)
    for lang, line in (('de', lambda i: f'ein hund {i} .'),
                       ('en', lambda i: f'a dog runs {i} ' + 'far ' * (i % 4) + '.')):
      with gzip.open(directory / f'{stem}.{lang}.gz', 'wt', encoding='utf-8') as f:
        f.writelines(line(i) + '\n' for i in rows)


def test_the_train_split_stays_on_disk_and_ids_are_flat(tmp_path):
  write_parallel(tmp_path / 'pairs', 2_000)
  settings = dict(path=str(tmp_path / 'pairs'), source_lang='de',
                  target_lang='en')
  raw = paired.read_pairs('files', **settings)
  assert isinstance(raw.source['train'], line_files.TextLines)
  assert isinstance(raw.target['valid'], list)
  corpus = paired.load_paired('files', **settings, vocab_min_count=1,
                              max_target_len=7, length_policy='drop')
  src, tgt = corpus.split('train')  # kept: i % 4 in (0, 1), 5 or 6 tokens
  assert isinstance(src, ragged.RaggedIds) and len(src) == 1_000
  assert corpus.dropped['train'] == 1_000
  references = corpus.references['train']
  assert len(references) == 1_000 and references[0] == 'a dog runs 0 .'
  assert references[3] == 'a dog runs 5 far .' and len(tgt[3]) == 6
  assert list(references)[-1] == 'a dog runs 1997 far .'
  assert corpus.decode_source(src[3]) == 'ein hund 5.'  # detokenized
  assert len(corpus.references['valid']) == 3


def test_sentencepiece_streams_its_training_sentences(tmp_path):
  sentences = [f'ein hund läuft {i} mal über die wiese .' for i in range(300)]
  from_list = tok_lib.train_sentencepiece(sentences, tmp_path / 'a', 'spm.de', 40)
  from_stream = tok_lib.train_sentencepiece(iter(sentences), tmp_path / 'b',
                                            'spm.de', 40)
  assert from_list.pieces == from_stream.pieces  # (the model files name their dirs)
  assert ((tmp_path / 'a' / 'spm.de.json').read_text()
          == (tmp_path / 'b' / 'spm.de.json').read_text())
  assert from_list.tokenize(sentences[0]) == from_stream.tokenize(sentences[0])
  # The record is checked against the same sentences when reloading.
  tok_lib.load_or_train_sentencepiece(sentences, tmp_path / 'b', 'spm.de', 40)
  with pytest.raises(DataError, match='other settings or data'):
    tok_lib.load_or_train_sentencepiece(sentences[1:], tmp_path / 'b',
                                        'spm.de', 40)


def test_a_jsonl_train_split_is_parsed_as_it_is_read(tmp_path):
  directory = tmp_path / 'pairs'
  directory.mkdir()
  for stem, n in (('train', 50), ('val', 3), ('test', 3)):
    (directory / f'{stem}.jsonl').write_text(''.join(
        json.dumps({'translation': {'de': f'hund {i}', 'en': f' dog {i} '}}) + '\n'
        for i in range(n)), encoding='utf-8')
  raw = paired.read_pairs('jsonl', path=str(directory), source_key='translation.de',
                          target_key='translation.en')
  assert isinstance(raw.source['train'], line_files.MappedLines)
  assert list(raw.source['train']) == [f'hund {i}' for i in range(50)]
  assert raw.target['train'][7] == ' dog 7 ' and raw.target['test'][2] == ' dog 2 '
  corpus = paired.load_paired('jsonl', path=str(directory), vocab_min_count=1,
                              source_key='translation.de',
                              target_key='translation.en')
  assert corpus.references['train'][1:3] == ('dog 1', 'dog 2')
  assert corpus.decode_target(corpus.target['train'][49]) == 'dog 49'
