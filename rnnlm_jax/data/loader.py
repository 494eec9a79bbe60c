"""load_corpus: data config -> Corpus, dispatching on data.source."""

import numpy as np

from rnnlm_jax.data import cache as cache_lib
from rnnlm_jax.data import corpus as corpus_lib
from rnnlm_jax.data import streaming
from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data.corpus import Corpus, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.sources import files as files_source
from rnnlm_jax.data.sources import stdlib as stdlib_source
from rnnlm_jax.data.sources import synthetic as synthetic_source
from rnnlm_jax.data.sources import tfds as tfds_source
from rnnlm_jax.data.vocab import Vocabulary

SOURCES = ('stdlib', 'files', 'tfds', 'synthetic')
MODES = ('stream', 'sentence')


def _get(data_config, key: str):
  try:
    return data_config[key]
  except (KeyError, AttributeError):
    raise DataError(f'data.{key} is missing from the config; start from '
                    'configs.base_config()') from None


def _check_config(data_config) -> None:
  source, mode = _get(data_config, 'source'), _get(data_config, 'mode')
  if source not in SOURCES:
    raise DataError(f'data.source={source!r} is not one of {SOURCES}')
  if mode not in MODES:
    raise DataError(f'data.mode={mode!r} is not one of {MODES}')
  text_lib.check_level(_get(data_config, 'level'))
  for key in ('vocab_max_size', 'max_train_tokens', 'max_eval_tokens'):
    if int(_get(data_config, key)) < 0:
      raise DataError(f'data.{key}={_get(data_config, key)} must be >= 0 '
                      '(0 means no limit)')
  if int(_get(data_config, 'vocab_min_count')) < 1:
    raise DataError(f'data.vocab_min_count={data_config.vocab_min_count} '
                    'must be >= 1')


def _raw_corpus(data_config) -> corpus_lib.RawCorpus:
  source = data_config.source
  if source == 'stdlib':
    return stdlib_source.load_raw()
  if source == 'files':
    return files_source.load_raw(data_config.path, data_config.split_fractions)
  return tfds_source.load_raw(data_config.tfds_name, data_config.tfds_data_dir,
                              data_config.tfds_text_key,
                              data_config.tfds_splits)


def _text_source(data_config) -> streaming.TextSource:
  source = data_config.source
  if source == 'stdlib':
    return stdlib_source.stream_source()
  if source == 'files':
    return files_source.stream_source(data_config.path,
                                      data_config.split_fractions)
  return tfds_source.stream_source(data_config.tfds_name,
                                   data_config.tfds_data_dir,
                                   data_config.tfds_text_key,
                                   data_config.tfds_splits)


def _cached_corpus(data_config, vocab: Vocabulary | None) -> Corpus:
  cached = cache_lib.load(_text_source(data_config),
                          cache_lib.settings_of(data_config, vocab),
                          str(data_config.cache_dir), vocab)
  caps = _caps(data_config)
  streams = {s: corpus_lib.readonly(corpus_lib.cap_tokens(cached.streams[s],
                                                          caps[s]))
             for s in SPLITS}
  return Corpus(name=cached.name, level=data_config.level, vocab=cached.vocab,
                fingerprint=cached.fingerprint, **streams)


def _caps(data_config) -> dict:
  train, evals = data_config.max_train_tokens, data_config.max_eval_tokens
  return {'train': int(train), 'valid': int(evals), 'test': int(evals)}


def _synthetic_corpus(data_config, vocab: Vocabulary | None) -> Corpus:
  """Synthetic Markov-chain corpus (word level only, no '<eos>')."""
  if data_config.level != 'word':
    # Silently switching levels would let code that reads data.level (e.g.
    # detokenize when sampling) disagree with the corpus.
    raise DataError(f"data.level={data_config.level!r} does not fit "
                    "data.source='synthetic' (tokens are words 's0', 's1', "
                    "...); set data.level='word'")
  v = int(data_config.synthetic_vocab_size)
  # No seed key in data.* yet: the chain is fixed (seed 0) unless the config
  # grows a `synthetic_seed`; config.seed deliberately does not change it.
  seed = int(data_config.get('synthetic_seed', 0))
  _, symbols, nll, fingerprint = synthetic_source.generate(
      v, int(data_config.synthetic_order), float(data_config.synthetic_alpha),
      data_config.synthetic_tokens, seed)
  names = synthetic_source.token_names(v)
  if vocab is None:
    vocab = Vocabulary.build(
        (names[i] for i in symbols['train'].tolist()),
        max_size=int(data_config.vocab_max_size),
        min_count=int(data_config.vocab_min_count), specials=(text_lib.UNK,))
  table = np.array([vocab.id_of(n) for n in names], dtype=np.int32)
  caps = _caps(data_config)
  streams, oracle = {}, {}
  for s in SPLITS:
    ids = corpus_lib.cap_tokens(table[symbols[s]], caps[s])
    streams[s] = corpus_lib.readonly(ids)
    oracle[s] = float(nll[s][:len(ids)].mean())
  return Corpus(name='synthetic', level='word', vocab=vocab,
                fingerprint=fingerprint, oracle_nll=oracle, **streams)


def load_corpus(data_config, vocab: Vocabulary | None = None) -> Corpus:
  """Loads the corpus that `data_config` (the config's `data` section) names.

  Args:
    data_config: ml_collections.ConfigDict with the keys of
      configs.base_config().data.
    vocab: encode with this vocabulary (e.g. restored with a checkpoint)
      instead of building one from the train split.

  Returns:
    A Corpus. The vocabulary is built from the whole train split, before the
    max_train_tokens / max_eval_tokens caps truncate the streams, so capped
    smoke runs share ids with full runs. With data.cache_dir set, the ids
    come memory-mapped from the corpus cache (cache.py; built on first use),
    equal to the ones read from text.
  """
  _check_config(data_config)
  if data_config.source == 'synthetic':
    return _synthetic_corpus(data_config, vocab)
  if data_config.get('cache_dir'):
    return _cached_corpus(data_config, vocab)
  raw = _raw_corpus(data_config)
  level = data_config.level
  vocab, ids = corpus_lib.encode_texts(
      raw.texts, level, bool(data_config.lowercase), vocab,
      max_size=int(data_config.vocab_max_size),
      min_count=int(data_config.vocab_min_count))
  caps = _caps(data_config)
  streams = {s: corpus_lib.readonly(corpus_lib.cap_tokens(ids[s], caps[s]))
             for s in SPLITS}
  return Corpus(name=raw.name, level=level, vocab=vocab,
                fingerprint=raw.fingerprint, **streams)
