"""The paired-corpus cache: tokenize and encode sentence pairs once, memory-map
the ids on later starts (data.cache_dir with task='seq2seq').

Layout of <data.cache_dir>/pairs-<name>-<key>/:
  manifest.json                  format, version, key, the raw pairs'
                                 fingerprint, settings, counts, checksums
  vocab.source.json, vocab.target.json
  spm.<lang>.model               the SentencePiece models (tokenizer
                                 'sentencepiece'), copied into spm_dir on use
  <split>.<side>.ids             flat uint16 / uint32 ids of every sequence
  <split>.<side>.offsets         int64 [n + 1]: sequence i is ids[o[i]:o[i+1]]
  <split>.kept                   int64 [n]: the raw pair each row came from
                                 (length_policy 'drop' removes some), which
                                 selects the BLEU references from the raw text
The ids are written straight into these files while encoding (RaggedWriter),
so a first start holds no corpus-sized list. The raw pairs are still read at
every start: their fingerprint is the key, and the references are the raw
target text (a parallel file's train split is streamed for both, in bounded
memory); what the cache saves is the tokenization, the vocabularies and the
encoding, most of a start's time.
The key hashes that fingerprint and every setting that changes the ids. A
run given vocabularies (a resume) uses the cache built without them when its
vocabularies are the same ones, else a cache of its own.

Building, publishing and the damage checks are the corpus cache's
(data/cache.py): a damaged cache is logged, naming the file, and rebuilt.
"""

import json
import os
import pathlib
import shutil
from typing import Callable, Sequence

import numpy as np

from rnnlm_jax.data import cache as cache_lib
from rnnlm_jax.data import cache_build
from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.ragged import RaggedIds, RaggedWriter
from rnnlm_jax.data.vocab import Vocabulary

FORMAT = 'rnnlm_jax.paired_cache'
VERSION = 1
SIDES = ('source', 'target')
# Settings that change the ids; the rest (paths, keys) are in the fingerprint.
ID_SETTINGS = ('tokenizer', 'lowercase', 'spm_vocab_size', 'spm_model_type',
               'vocab_min_count', 'vocab_max_size', 'max_source_len',
               'max_target_len', 'length_policy', 'length_splits',
               'source_lang', 'target_lang')


def cache_key(raw_fingerprint: str, settings: dict, vocabs,
              models: dict | None) -> str:
  """The hash of what the ids depend on: the raw pairs, the ID_SETTINGS,
  and given vocabularies / SentencePiece models ({file: md5}) if any."""
  chosen = {k: settings[k] for k in ID_SETTINGS}
  given = [v.fingerprint for v in vocabs] if vocabs else None
  return md5_of([FORMAT, str(VERSION), raw_fingerprint,
                 json.dumps(chosen, sort_keys=True, default=list),
                 json.dumps(given), json.dumps(models, sort_keys=True)])[:16]


def _entry(path: pathlib.Path, dtype: np.dtype) -> dict:
  """The manifest entry of an array file already written."""
  size = path.stat().st_size
  return {'file': path.name, 'tokens': size // dtype.itemsize, 'bytes': size,
          'dtype': dtype.name, 'md5': cache_build.file_md5(path),
          'blocks': cache_build.sampled_blocks(path, size)}


def _write_array(directory: pathlib.Path, name: str, array: np.ndarray) -> dict:
  path = directory / name
  with open(path, 'wb') as f:
    f.write(array.tobytes())
    f.flush()
    os.fsync(f.fileno())
  return _entry(path, array.dtype)


def _save_vocab(directory: pathlib.Path, side: str, vocab: Vocabulary) -> dict:
  name = f'vocab.{side}.json'
  vocab.save(directory / name)
  return {'file': name, 'size': len(vocab), 'fingerprint': vocab.fingerprint,
          'md5': cache_build.file_md5(directory / name)}


def writers(directory: pathlib.Path) -> Callable[[str, str, Vocabulary],
                                                  RaggedWriter]:
  """The `writer(split, side, vocab)` that encodes straight into the
  cache's `<split>.<side>.ids` / `.offsets` files of `directory`."""
  return lambda split, side, vocab: RaggedWriter(
      cache_build.ids_dtype(len(vocab)), directory, f'{split}.{side}')


def build(directory: pathlib.Path, key: str, encoded: dict,
          spm_files: Sequence[pathlib.Path]) -> None:
  """Completes a cache in `directory` (the manifest last).

  encoded: {'name', 'raw_fingerprint', 'settings', 'vocabs': (source,
  target), 'rows': {split: {'source', 'target': what the writers(directory)
  writer's finish() returned, 'kept': [raw index...]}}, 'truncated',
  'dropped'}.
  """
  files, vocabs = {}, {}
  for side, vocab in zip(SIDES, encoded['vocabs']):
    vocabs[side] = _save_vocab(directory, side, vocab)
    dtype = cache_build.ids_dtype(len(vocab))
    for split in SPLITS:
      ids_path, offsets_path = encoded['rows'][split][side]
      files[ids_path.name] = _entry(ids_path, dtype)
      files[offsets_path.name] = _entry(offsets_path, np.dtype(np.int64))
  for split in SPLITS:
    kept = np.asarray(encoded['rows'][split]['kept'], np.int64)
    files[f'{split}.kept'] = _write_array(directory, f'{split}.kept', kept)
  spm = {}
  for path in spm_files:
    shutil.copyfile(path, directory / path.name)
    spm[path.name] = cache_build.file_md5(directory / path.name)
  manifest = {'format': FORMAT, 'version': VERSION, 'key': key,
              'name': encoded['name'], 'raw_fingerprint': encoded['raw_fingerprint'],
              'settings': {k: encoded['settings'][k] for k in ID_SETTINGS},
              'truncated': encoded['truncated'], 'dropped': encoded['dropped'],
              'files': files, 'vocabs': vocabs, 'spm': spm}
  with open(directory / cache_build.MANIFEST, 'w', encoding='utf-8') as f:
    json.dump(manifest, f, indent=1, default=list)
    f.flush()
    os.fsync(f.fileno())


def open_pairs(directory: pathlib.Path, key: str) -> dict:
  """build's `encoded` keys 'vocabs', 'rows' (RaggedIds source / target,
  kept), 'truncated', 'dropped', 'spm' {file: md5} (checked) and the
  'directory', of a good cache;
  DamagedCache naming the bad file otherwise."""
  manifest = cache_lib.read_manifest(directory, key, FORMAT, VERSION)
  try:
    files = manifest['files']
    arrays = {name: cache_lib.open_ids(directory, entry, np.dtype(entry['dtype']))
              for name, entry in files.items()}
    vocabs = tuple(cache_lib.open_vocab(directory, manifest['vocabs'][side])
                   for side in SIDES)
    out = {'vocabs': vocabs, 'truncated': manifest['truncated'],
           'dropped': manifest['dropped'], 'spm': dict(manifest['spm']),
           'directory': directory}
    out['rows'] = {
        s: {'kept': arrays[f'{s}.kept'],
            **{side: RaggedIds(arrays[f'{s}.{side}.ids'],
                               arrays[f'{s}.{side}.offsets']) for side in SIDES}}
        for s in SPLITS}
    for name, md5 in out['spm'].items():
      if cache_build.file_md5(directory / name) != md5:
        raise cache_lib.DamagedCache(directory / name, 'checksum mismatch')
  except (KeyError, TypeError, ValueError, OSError) as e:
    raise cache_lib.DamagedCache(directory / cache_build.MANIFEST,
                                 f'malformed manifest ({type(e).__name__}: {e})'
                                 ) from None
  for side, vocab in zip(SIDES, vocabs):
    for split in SPLITS:
      offsets = arrays[f'{split}.{side}.offsets']
      if (len(offsets) != len(arrays[f'{split}.kept']) + 1 or offsets[0] != 0
          or offsets[-1] != len(arrays[f'{split}.{side}.ids'])):
        raise cache_lib.DamagedCache(directory / f'{split}.{side}.offsets',
                                     'offsets do not match the ids')
      if arrays[f'{split}.{side}.ids'].dtype != cache_build.ids_dtype(len(vocab)):
        raise cache_lib.DamagedCache(directory / cache_build.MANIFEST,
                                     f'{side} ids do not fit {len(vocab)} ids')
  return out


def load(cache_dir: str, name: str, raw_fingerprint: str, settings: dict,
         vocabs, models: dict | None, encode: Callable[[Callable], dict],
         spm_dir: str) -> dict:
  """The cached pairs (open_pairs' dict), built by `encode(writer)` (build's
  `encoded` argument; `writer`: see writers) when missing or damaged.

  vocabs / models: what the run already has (a resume: its vocabularies and
  SentencePiece models {file: md5}), or None. The cache built without them
  is used when it holds the same ones; else one of their own. SentencePiece
  models of the cache are copied into spm_dir when it has none.
  """
  prefix = f'pairs-{cache_lib.safe_name(name)}'
  if vocabs is not None or models is not None:
    key = cache_key(raw_fingerprint, settings, None, None)
    try:
      directory, _ = cache_lib.existing(cache_dir, f'{prefix}-{key}',
                                        lambda d: open_pairs(d, key))
      cached = open_pairs(directory, key)
      same_vocabs = vocabs is None or [v.fingerprint for v in cached['vocabs']
                                       ] == [v.fingerprint for v in vocabs]
      same_models = models is None or all(
          cached['spm'].get(f) == md5 for f, md5 in models.items())
      if same_vocabs and same_models:
        cache_lib.log.info('paired cache: memory-mapping %s', directory)
        return _with_spm(cached, spm_dir)
    except cache_lib.DamagedCache:
      pass  # missing or damaged: the run's own cache below
  key = cache_key(raw_fingerprint, settings, vocabs, models)

  def build_into(tmp: pathlib.Path) -> None:
    encoded = encode(writers(tmp))
    spm_files = [pathlib.Path(spm_dir) / f'spm.{settings[lang]}.model'
                 for lang in ('source_lang', 'target_lang')
                 ] if settings['tokenizer'] == 'sentencepiece' else []
    build(tmp, key, encoded, spm_files)

  cached = cache_lib.open_or_build(cache_dir, f'{prefix}-{key}',
                                   lambda d: open_pairs(d, key), build_into,
                                   f'paired {name}')
  return _with_spm(cached, spm_dir)


def _with_spm(cached: dict, spm_dir: str) -> dict:
  """Copies the cache's SentencePiece models into spm_dir where missing."""
  for file_name, md5 in cached['spm'].items():
    path = cached['directory'] / file_name
    target = pathlib.Path(spm_dir) / file_name
    if not target.exists():
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(path, target)
    elif cache_build.file_md5(target) != md5:
      raise DataError(f'{target} differs from the SentencePiece model of the '
                      f'paired cache {path.parent}; remove one of them')
  return cached
