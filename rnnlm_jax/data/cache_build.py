"""Building a corpus cache directory: two streaming passes over the text.

Pass 1 counts the train tokens (the vocabulary) and every split's size in
UTF-8 bytes (the corpus fingerprint hashes each part after its length). Pass
2 tokenizes and encodes chunk by chunk, appending the ids to one flat file
per split while hashing the text (fingerprint) and the ids (checksums). Peak
memory: one chunk's tokens plus the vocabulary counts.
"""

import collections
import hashlib
import json
import os
import pathlib

import numpy as np

from rnnlm_jax.data import streaming
from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data import vocab as vocab_lib
from rnnlm_jax.data.corpus import SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.vocab import Vocabulary

FORMAT = 'rnnlm_jax.corpus_cache'
VERSION = 1
MANIFEST = 'manifest.json'
VOCAB = 'vocab.json'
# Checked on every load: this many blocks per file, evenly spaced, first and
# last included. Reading 16 x 64 KiB costs milliseconds for any file size.
SAMPLE_BLOCKS = 16
BLOCK_BYTES = 64 << 10
_READ = 16 << 20


def ids_dtype(vocab_size: int) -> np.dtype:
  """uint16 while every id fits, else uint32."""
  return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def specials(level: str) -> tuple[str, ...]:
  # As corpus.encode_texts: char level needs no '<eos>' ('\n' ends lines).
  return (text_lib.UNK,) if level == 'char' else (text_lib.UNK, text_lib.EOS)


def file_md5(path: pathlib.Path) -> str:
  h = hashlib.md5()
  with open(path, 'rb') as f:
    while block := f.read(_READ):
      h.update(block)
  return h.hexdigest()


def block_offsets(size: int) -> list[int]:
  """Start offsets of the sampled blocks of a `size`-byte file."""
  if size <= BLOCK_BYTES:
    return [0] if size else []
  n = min(SAMPLE_BLOCKS, -(-size // BLOCK_BYTES))
  last = size - BLOCK_BYTES
  return sorted({round(i * last / (n - 1)) for i in range(n)})


def sampled_blocks(path: pathlib.Path, size: int) -> list[list]:
  """[[offset, length, md5], ...] of the sampled blocks of `path`."""
  blocks = []
  with open(path, 'rb') as f:
    for offset in block_offsets(size):
      f.seek(offset)
      data = f.read(BLOCK_BYTES)
      blocks.append([offset, len(data), hashlib.md5(data).hexdigest()])
  return blocks


def _count_pass(source: streaming.TextSource, level: str, lowercase: bool,
                count_train: bool) -> tuple[dict, collections.Counter]:
  """({split: UTF-8 bytes}, train token counts if count_train)."""
  num_bytes, counts = {}, collections.Counter()
  for split in SPLITS:
    total, has_text = 0, False
    for chunk in source.chunks(split):
      total += len(chunk.encode('utf-8'))
      has_text = has_text or bool(chunk.strip())
      if split == 'train' and count_train:
        chunk = chunk.lower() if lowercase else chunk
        if level == 'char':
          counts.update(vocab_lib.char_counts(chunk))
        else:
          counts.update(streaming.chunk_tokens(chunk, level))
    if source.check_split:
      source.check_split(split, has_text)
    num_bytes[split] = total
  return num_bytes, counts


def _encode_split(source, split, directory, vocab, dtype, level, lowercase,
                  text_md5) -> dict:
  """Writes split's ids to directory/<split>.ids; its manifest entry."""
  name = f'{split}.ids'
  h, tokens = hashlib.md5(), 0
  with open(directory / name, 'wb') as f:
    for chunk in source.chunks(split):
      if text_md5 is not None:
        text_md5.feed(chunk)
      chunk = chunk.lower() if lowercase else chunk
      ids = vocab.encode(streaming.chunk_tokens(chunk, level)).astype(dtype)
      data = ids.tobytes()
      f.write(data)
      h.update(data)
      tokens += len(ids)
    f.flush()
    os.fsync(f.fileno())
  size = tokens * dtype.itemsize
  return {'file': name, 'tokens': tokens, 'bytes': size, 'md5': h.hexdigest(),
          'blocks': sampled_blocks(directory / name, size)}


def _encode_pass(source, directory, vocab, dtype, level, lowercase,
                 num_bytes) -> tuple[dict, str]:
  """({split: manifest entry}, corpus fingerprint)."""
  plan = source.fingerprint_plan
  covered = [s for item in plan or () if not isinstance(item, str)
             for s in item]
  if plan is not None and covered != list(SPLITS):
    raise ValueError(f'fingerprint_plan {plan} must cover {SPLITS} in order')
  files, md5 = {}, streaming.PartsMd5()
  args = (directory, vocab, dtype, level, lowercase)
  for item in plan or ():
    if isinstance(item, str):
      md5.part(item)
      continue
    md5.begin(sum(num_bytes[s] for s in item))
    for split in item:
      files[split] = _encode_split(source, split, *args, md5)
  if plan is None:
    for split in SPLITS:
      files[split] = _encode_split(source, split, *args, None)
    return files, source.fingerprint()
  return files, md5.hexdigest()


def build(source: streaming.TextSource, settings: dict, key: str,
          directory: pathlib.Path, vocab: Vocabulary | None) -> None:
  """Writes a complete cache (ids, vocab.json, manifest.json) into directory.

  The manifest is written last, after every file was read back and checked
  against the checksum taken while writing it (the one full verification).
  """
  level, lowercase = settings['level'], settings['lowercase']
  num_bytes, counts = _count_pass(source, level, lowercase, vocab is None)
  if vocab is None:
    vocab = Vocabulary.from_counts(
        counts, max_size=settings['vocab_max_size'],
        min_count=settings['vocab_min_count'], specials=specials(level))
  del counts
  dtype = ids_dtype(len(vocab))
  files, fingerprint = _encode_pass(source, directory, vocab, dtype, level,
                                    lowercase, num_bytes)
  vocab.save(directory / VOCAB)
  for entry in files.values():
    path = directory / entry['file']
    if os.path.getsize(path) != entry['bytes'] or file_md5(path) != entry['md5']:
      raise DataError(f'corpus cache file {path} does not read back as '
                      'written; check the disk under data.cache_dir')
  manifest = {
      'format': FORMAT, 'version': VERSION, 'key': key, 'name': source.name,
      'source': {'identity': source.identity, 'fingerprint': fingerprint,
                 'utf8_bytes': num_bytes},
      # data.max_*_tokens are not here: the files hold whole splits and the
      # caps slice them at load, so capped and full runs share one cache.
      'settings': settings, 'dtype': dtype.name,
      'tokens': {s: files[s]['tokens'] for s in SPLITS},
      'files': files,
      'vocab': {'file': VOCAB, 'size': len(vocab),
                'fingerprint': vocab.fingerprint,
                'md5': file_md5(directory / VOCAB)},
  }
  with open(directory / MANIFEST, 'w', encoding='utf-8') as f:
    json.dump(manifest, f, indent=1)
    f.flush()
    os.fsync(f.fileno())
