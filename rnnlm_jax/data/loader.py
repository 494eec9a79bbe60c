"""load_corpus: data config -> Corpus, dispatching on data.source."""

import numpy as np

from rnnlm_jax import registry
from rnnlm_jax.data import cache as cache_lib
from rnnlm_jax.data import corpus as corpus_lib
from rnnlm_jax.data import piece_corpus
from rnnlm_jax.data import streaming
from rnnlm_jax.data import text as text_lib
from rnnlm_jax.data.corpus import Corpus, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.sources import files as files_source
from rnnlm_jax.data.sources import stdlib as stdlib_source
from rnnlm_jax.data.sources import synthetic as synthetic_source
from rnnlm_jax.data.sources import tfds as tfds_source
from rnnlm_jax.data.vocab import Vocabulary

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
    raise DataError(SOURCES.unknown(source))
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


def _cached_corpus(data_config, vocab: Vocabulary | None,
                   text_source: streaming.TextSource) -> Corpus:
  """The corpus from the cache in data.cache_dir (built on first use)."""
  cached = cache_lib.load(text_source,
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
  v = int(data_config.synthetic.vocab_size)
  # The chain is fixed (seed 0): config.seed changes the model's init and
  # data order, never the corpus it is compared on.
  _, symbols, nll, fingerprint = synthetic_source.generate(
      v, int(data_config.synthetic.order), float(data_config.synthetic.alpha),
      data_config.synthetic.tokens, 0)
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


def _text_corpus(load_raw, stream_source):
  """A text source -> its loader: tokenized, encoded Corpus from the raw text
  per split (`load_raw`), or, with data.cache_dir set, memory-mapped from the
  cache that `stream_source` fills in one streaming pass."""

  def load(data_config, vocab: Vocabulary | None) -> Corpus:
    if data_config.cache_dir:
      return _cached_corpus(data_config, vocab, stream_source(data_config))
    raw = load_raw(data_config)
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

  load.load_raw = load_raw  # the text itself, for data.level='code_bpe'
  return load


def _piece_corpus(data_config, vocab: Vocabulary | None, spm_dir) -> Corpus:
  """data.level='code_bpe': SentencePiece pieces (piece_corpus.py)."""
  load_raw = getattr(SOURCES.get(data_config.source), 'load_raw', None)
  if load_raw is None:
    raise DataError(f"data.level='code_bpe' needs a text source; "
                    f'data.source={data_config.source!r} is not one')
  if data_config.cache_dir:
    raise DataError("data.level='code_bpe' cannot use the corpus cache yet; "
                    "set data.cache_dir=''")
  if data_config.lowercase:
    raise DataError("data.level='code_bpe' keeps code byte for byte; set "
                    'data.lowercase=False')
  if not spm_dir:
    raise DataError("data.level='code_bpe' trains a SentencePiece model that "
                    "lives in the run's workdir: pass load_corpus(..., "
                    'spm_dir=workdir)')
  raw = load_raw(data_config)
  vocab, ids, fingerprint, tokenizer = piece_corpus.encode_corpus(
      raw, spm_dir, int(_get(data_config, 'spm_vocab_size')), vocab)
  caps = _caps(data_config)
  streams = {s: corpus_lib.readonly(corpus_lib.cap_tokens(ids[s], caps[s]))
             for s in SPLITS}
  return Corpus(name=raw.name, level='code_bpe', vocab=vocab,
                fingerprint=fingerprint, tokenizer=tokenizer, **streams)


# data.source -> (data config, vocab or None) -> Corpus. A text source's own
# options live in its sub-dict of the data config (e.g. data.tfds.name).
SOURCES = registry.Registry('data.source')
SOURCES.register('stdlib', _text_corpus(
    lambda d: stdlib_source.load_raw(), lambda d: stdlib_source.stream_source()))
SOURCES.register('files', _text_corpus(
    lambda d: files_source.load_raw(d.path, d.split_fractions),
    lambda d: files_source.stream_source(d.path, d.split_fractions)))
SOURCES.register('tfds', _text_corpus(
    lambda d: tfds_source.load_raw(d.tfds.name, d.tfds.data_dir,
                                   d.tfds.text_key, d.tfds.splits),
    lambda d: tfds_source.stream_source(d.tfds.name, d.tfds.data_dir,
                                        d.tfds.text_key, d.tfds.splits)))
SOURCES.register('synthetic', _synthetic_corpus)


def load_corpus(data_config, vocab: Vocabulary | None = None,
                spm_dir: str | None = None) -> Corpus:
  """Loads the corpus that `data_config` (the config's `data` section) names.

  Args:
    data_config: ml_collections.ConfigDict with the keys of
      configs.base_config().data.
    vocab: encode with this vocabulary (e.g. restored with a checkpoint)
      instead of building one from the train split.
    spm_dir: data.level='code_bpe' only: the directory (the run's workdir)
      its SentencePiece model is saved to / reloaded from.

  Returns:
    A Corpus. The vocabulary is built from the whole train split, before the
    max_train_tokens / max_eval_tokens caps truncate the streams, so capped
    smoke runs share ids with full runs. With data.cache_dir set, the ids
    come memory-mapped from the corpus cache (cache.py; built on first use),
    equal to the ones read from text.
  """
  _check_config(data_config)
  if data_config.level == 'code_bpe':
    return _piece_corpus(data_config, vocab, spm_dir)
  return SOURCES.get(data_config.source)(data_config, vocab)
