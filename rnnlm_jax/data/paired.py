"""Sentence pairs for sequence-to-sequence models: PairedCorpus, load_paired.

  corpus = load_paired('files', path='../shared/data/multi30k',
                       source_lang='de', target_lang='en', vocab_min_count=2)
  src, tgt = corpus.split('train')       # RaggedIds: int32 [n_i] id arrays
  for batch in pair_batches(src, tgt, 128, seed=0, epoch=0): ...
  corpus.decode_target(ids)              # -> detokenized str, for BLEU
  corpus.references['test']              # the raw target sentences
  raw = read_pairs('instructions', path=..., record_format='alpaca')
                                         # RawPairs: the strings, untokenized

Source and target have separate vocabularies built from the training split,
both starting with the specials '<pad>'=0, '<unk>'=1, '<bos>'=2, '<eos>'=3
(pad first so zero-filled arrays are padding). The stored id sequences hold
the sentence tokens only; batching appends '<eos>' (source and target) and
prepends '<bos>' (decoder inputs).
"""

import array
import dataclasses
import itertools
import os
import pathlib
from typing import Mapping, Sequence

import numpy as np

from rnnlm_jax.data import cache_build
from rnnlm_jax.data import code_instructions  # registers its format
from rnnlm_jax.data import instruction_files  # registers its format
from rnnlm_jax.data import line_files
from rnnlm_jax.data import paired_cache
from rnnlm_jax.data import paired_sources
from rnnlm_jax.data import tokenizers as tok_lib
from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.ragged import RaggedWriter
from rnnlm_jax.data.text import EOS, UNK
from rnnlm_jax.data.vocab import Vocabulary

PAD, BOS = '<pad>', '<bos>'
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
# data.paired.format -> reader; DATA_SOURCES: the same registry (`in`,
# iteration and names() list the formats registered so far).
PAIR_FORMATS = DATA_SOURCES = paired_sources.PAIR_FORMATS
LENGTH_POLICIES = ('truncate', 'drop')


def defaults() -> dict:
  """load_paired's settings with their default values (config keys)."""
  return dict(
      data_source='files', path='', source_lang='de', target_lang='en',
      split_stems=None, source_key='', target_key='', tfds_name='',
      tfds_data_dir='', tfds_splits=paired_sources.TFDS_SPLITS,
      tokenizer='punct', lowercase=True, spm_vocab_size=8000, spm_dir='',
      spm_model_type='unigram',
      vocab_min_count=1, vocab_max_size=0, max_source_len=0,
      max_target_len=0, length_policy='truncate', length_splits=('train',),
      cache_dir='',
      **code_instructions.defaults(), **instruction_files.defaults())


# eq=False: a generated __eq__ would compare numpy arrays elementwise.
@dataclasses.dataclass(frozen=True, eq=False)
class PairedCorpus:
  """Tokenized, encoded sentence pairs of the three splits.

  Attributes:
    name: e.g. 'multi30k', 'tfds:wmt14_translate/de-en'.
    source_lang, target_lang: language codes, e.g. 'de', 'en'.
    source_vocab, target_vocab: Vocabulary each (SPECIALS first).
    source_tokenizer, target_tokenizer: PunctTokenizer | SentencePieceTokenizer.
    source, target: {split: RaggedIds}: a sequence of int32 [n_i] read-only
      id arrays (in memory or memory-mapped from the cache), no specials;
      pair i is (source[split][i], target[split][i]).
    references: {split: sequence of str}: the target sentences as read
      (cased, untokenized, not truncated, stripped), aligned with
      target[split], for BLEU. A split the reader streams from disk (the
      train split of parallel or JSONL files) is read again when iterated.
    fingerprint: md5 of the raw pairs and every setting that changes ids.
    truncated, dropped: {split: number of pairs} cut or removed by the
      max_source_len / max_target_len policy.
    info: the reader's RawPairs.info (e.g. code extraction counts).
  """
  name: str
  source_lang: str
  target_lang: str
  source_vocab: Vocabulary
  target_vocab: Vocabulary
  source_tokenizer: object
  target_tokenizer: object
  source: Mapping[str, Sequence]
  target: Mapping[str, Sequence]
  references: Mapping[str, Sequence]
  fingerprint: str
  truncated: Mapping[str, int]
  dropped: Mapping[str, int]
  info: Mapping = dataclasses.field(default_factory=dict)

  @property
  def vocab(self) -> Vocabulary:
    """The vocabulary a model predicts: the target side's."""
    return self.target_vocab

  @property
  def level(self) -> str:
    """'word' (punctuation tokenizer) or 'subword' (SentencePiece)."""
    return ('subword' if isinstance(self.target_tokenizer,
                                    tok_lib.SentencePieceTokenizer) else 'word')

  def split(self, name: str) -> tuple[tuple, tuple]:
    """(source id arrays, target id arrays) of split `name`."""
    if name not in SPLITS:
      raise DataError(f'split {name!r} is not one of {SPLITS}')
    return self.source[name], self.target[name]

  def decode_target(self, ids) -> str:
    """Detokenized target sentence of `ids` (model output, e.g. a beam).

    Stops at the first '<eos>'; '<pad>' and '<bos>' are skipped.
    """
    return _decode(ids, self.target_vocab, self.target_tokenizer)

  def decode_source(self, ids) -> str:
    return _decode(ids, self.source_vocab, self.source_tokenizer)

  def save_vocabs(self, directory: str | os.PathLike) -> None:
    """Writes vocab.{source_lang}.json and vocab.{target_lang}.json."""
    save_vocabs(directory, self.source_lang, self.target_lang,
                (self.source_vocab, self.target_vocab))

  def __repr__(self) -> str:
    sizes = ', '.join(f'{s}={len(self.source[s]):,}' for s in SPLITS)
    return (f'PairedCorpus({self.name!r}, {self.source_lang}->'
            f'{self.target_lang}, vocab={len(self.source_vocab):,}/'
            f'{len(self.target_vocab):,}, {sizes})')


def _decode(ids, vocab: Vocabulary, tokenizer) -> str:
  ids = np.asarray(ids).reshape(-1).tolist()
  if EOS_ID in ids:
    ids = ids[:ids.index(EOS_ID)]
  return tokenizer.detokenize(
      vocab.decode([i for i in ids if i not in (PAD_ID, BOS_ID)]))


def vocab_path(directory: str | os.PathLike, lang: str) -> pathlib.Path:
  return pathlib.Path(directory) / f'vocab.{lang}.json'


def save_vocabs(directory, source_lang: str, target_lang: str,
                vocabs: tuple[Vocabulary, Vocabulary]) -> None:
  pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
  for lang, vocab in zip((source_lang, target_lang), vocabs):
    vocab.save(vocab_path(directory, lang))


def load_vocabs(directory, source_lang: str,
                target_lang: str) -> tuple[Vocabulary, Vocabulary]:
  """(source, target) vocabularies written by save_vocabs."""
  vocabs = []
  for lang in (source_lang, target_lang):
    path = vocab_path(directory, lang)
    if not path.is_file():
      raise DataError(f'{path} does not exist; save the vocabularies with '
                      'PairedCorpus.save_vocabs first')
    vocabs.append(check_specials(Vocabulary.load(path), str(path)))
  return vocabs[0], vocabs[1]


def check_specials(vocab: Vocabulary, where: str) -> Vocabulary:
  if vocab.tokens[:len(SPECIALS)] != SPECIALS:
    raise DataError(f'{where}: a paired vocabulary must start with {SPECIALS}, '
                    f'this one starts with {vocab.tokens[:len(SPECIALS)]}')
  return vocab


def _check_settings(s: dict) -> None:
  if (not s['source_lang'] or not s['target_lang']
      or s['source_lang'] == s['target_lang']):
    raise DataError(f"data.source_lang={s['source_lang']!r} and "
                    f"data.target_lang={s['target_lang']!r} must be two "
                    'different, non-empty language codes')
  if s['tokenizer'] not in tok_lib.TOKENIZERS:
    raise DataError(f"data.tokenizer={s['tokenizer']!r} is not one of "
                    f'{tok_lib.TOKENIZERS}')
  if s['spm_model_type'] not in tok_lib.MODEL_TYPES:
    raise DataError(f"data.spm_model_type={s['spm_model_type']!r} is not one "
                    f'of {tok_lib.MODEL_TYPES}')
  if s['spm_model_type'] == 'code_bpe' and s['lowercase']:
    raise DataError("data.spm_model_type='code_bpe' keeps code byte for byte "
                    'but data.lowercase=True would lower-case it; set '
                    'data.lowercase=False')
  if s['length_policy'] not in LENGTH_POLICIES:
    raise DataError(f"data.length_policy={s['length_policy']!r} is not one of "
                    f'{LENGTH_POLICIES}')
  for key in ('max_source_len', 'max_target_len'):
    if s[key] != 0 and s[key] < 2:
      raise DataError(f'data.{key}={s[key]} must be 0 (no limit) or >= 2 (it '
                      "counts the '<eos>' too)")
  for split in s['length_splits']:
    if split not in SPLITS:
      raise DataError(f'data.length_splits entry {split!r} is not one of '
                      f'{SPLITS}')
  if s['vocab_min_count'] < 1 or s['vocab_max_size'] < 0:
    raise DataError(f"data.vocab_min_count={s['vocab_min_count']} must be >= 1 "
                    f"and data.vocab_max_size={s['vocab_max_size']} >= 0")


def _merged(data_source: str, settings: dict) -> dict:
  """defaults() updated by `settings`; unknown keys and formats: DataError."""
  unknown = sorted(set(settings) - set(defaults()))
  if unknown:
    raise DataError(f'unknown paired data setting(s) {unknown}; known: '
                    f'{sorted(defaults())}')
  if data_source not in PAIR_FORMATS:
    raise DataError(PAIR_FORMATS.unknown(data_source))
  return dict(defaults(), data_source=data_source, **settings)


def read_pairs(data_source: str = 'files', **settings
               ) -> paired_sources.RawPairs:
  """The raw (untokenized) pairs of format `data_source` (a PAIR_FORMATS
  name), read with `settings` (keys of defaults(); those the format does not
  use are ignored).

  Returns RawPairs: {split: list of str} source (for instructions: the
  prompt) and target (the response), a fingerprint and the reader's info.
  """
  s = _merged(data_source, settings)
  return PAIR_FORMATS.get(data_source)(s)


def _tokenizer(s: dict, lang: str, train_sentences: Sequence[str]):
  if s['tokenizer'] == 'punct':
    return tok_lib.PunctTokenizer(lowercase=s['lowercase'])
  if not s['spm_dir']:
    raise DataError("data.tokenizer='sentencepiece' needs data.spm_dir (the "
                    "run's workdir) to save the SentencePiece models in")
  # Reloaded when resuming (or in a later run with the same workdir).
  return tok_lib.load_or_train_sentencepiece(
      train_sentences, s['spm_dir'], f'spm.{lang}', s['spm_vocab_size'],
      lowercase=s['lowercase'], model_type=s['spm_model_type'])


def _build_vocab(s: dict, tokenizer, train_tokens) -> Vocabulary:
  if s['tokenizer'] == 'sentencepiece':
    # The model already chose the pieces: keep all of them, in model order.
    return Vocabulary(SPECIALS + tuple(p for p in tokenizer.pieces
                                       if p not in SPECIALS))
  return Vocabulary.build(itertools.chain.from_iterable(train_tokens),
                          max_size=s['vocab_max_size'],
                          min_count=s['vocab_min_count'], specials=SPECIALS)


def length_caps(max_source: int, max_target: int) -> tuple:
  """The most tokens a pair's source / target ids may hold (None: any).

  max_source / max_target count tokens plus the '<eos>' batching appends, so
  an id sequence may hold max - 1 tokens; 0 means no limit."""
  return (max_source - 1 if max_source else None,
          max_target - 1 if max_target else None)


def _tokenizers(s: dict, raw) -> list:
  return [_tokenizer(s, lang, side['train']) for lang, side in
          zip((s['source_lang'], s['target_lang']), (raw.source, raw.target))]


def _in_memory(split: str, side: str, vocab: Vocabulary) -> RaggedWriter:
  return RaggedWriter(cache_build.ids_dtype(len(vocab)))


def _encode(s: dict, raw, vocabs, writer=_in_memory) -> dict:
  """Tokenizes, builds the vocabularies (unless given) and encodes every
  split: paired_cache.build's `encoded` dict, the ids written by
  `writer(split, side, vocab)` (a RaggedWriter; in memory by default).

  The pairs stream through one at a time (the vocabularies count a first
  pass over train): no sentence's tokens or ids outlive their encoding.
  Over-long pairs (data.max_*_len, in data.length_splits) are truncated or
  dropped; truncation keeps the reference whole (BLEU is scored against
  what the sentence really says). A pair over both limits counts once.
  """
  toks = _tokenizers(s, raw)
  sides = (raw.source, raw.target)
  if vocabs is None:
    vocabs = [_build_vocab(s, t, (t.tokenize(x) for x in side['train']))
              for t, side in zip(toks, sides)]
  rows, truncated, dropped = {}, {}, {}
  for split in SPLITS:
    out = [writer(split, side, v) for side, v in zip(paired_cache.SIDES, vocabs)]
    cap_s, cap_t = (length_caps(s['max_source_len'], s['max_target_len'])
                    if split in s['length_splits'] else (None, None))
    kept, truncated[split], dropped[split] = array.array('q'), 0, 0
    for i, (x, y) in enumerate(zip(sides[0][split], sides[1][split])):
      src = vocabs[0].encode(toks[0].tokenize(x))
      tgt = vocabs[1].encode(toks[1].tokenize(y))
      if ((cap_s is not None and len(src) > cap_s)
          or (cap_t is not None and len(tgt) > cap_t)):
        if s['length_policy'] == 'drop':
          dropped[split] += 1
          continue
        truncated[split] += 1
        src, tgt = src[:cap_s], tgt[:cap_t]
      out[0].append(src)
      out[1].append(tgt)
      kept.append(i)
    rows[split] = {'source': out[0].finish(), 'target': out[1].finish(),
                   'kept': np.frombuffer(kept, np.int64)}
  return {'name': raw.name, 'raw_fingerprint': raw.fingerprint, 'settings': s,
          'vocabs': tuple(vocabs), 'rows': rows, 'truncated': truncated,
          'dropped': dropped, 'tokenizers': toks}


def _spm_models(s: dict) -> dict | None:
  """{file: md5} of the SentencePiece models already in spm_dir (a resume
  or a reused workdir), which the ids then depend on; None if none."""
  if s['tokenizer'] != 'sentencepiece' or not s['spm_dir']:
    return None
  paths = [pathlib.Path(s['spm_dir']) / f"spm.{s[k]}.model"
           for k in ('source_lang', 'target_lang')]
  found = {p.name: cache_build.file_md5(p) for p in paths if p.exists()}
  return found or None


def load_paired(data_source: str = 'files', *, vocabs=None,
                **settings) -> PairedCorpus:
  """Reads, tokenizes and encodes the pairs that the settings name.

  Args:
    data_source: a PAIR_FORMATS name: 'files' (parallel `{stem}.{lang}[.gz]`
      files in `path`), 'jsonl' (`{stem}.jsonl[.gz]` in `path`), 'tfds',
      'code_instructions' (docstring -> function pairs, code_instructions.py)
      or 'instructions' (Alpaca / Dolly files, instruction_files.py).
    vocabs: (source, target) Vocabulary to encode with (resuming, see
      load_vocabs); None builds both from the train split.
    **settings: any key of defaults():
      path: the data directory (files, jsonl).
      source_lang, target_lang: language suffixes / TFDS feature names.
      split_stems: {split: stem or stems} overriding DEFAULT_SPLIT_STEMS.
      source_key, target_key: JSONL keys (dotted for nesting); default the
        language codes.
      tfds_name, tfds_data_dir, tfds_splits: the TFDS dataset.
      tokenizer: 'punct' | 'sentencepiece'; lowercase: lower-case first.
      spm_vocab_size, spm_dir: SentencePiece pieces per language and the
        directory the models are saved to / reloaded from (the workdir).
      spm_model_type: 'unigram' | 'bpe' | 'code_bpe' (code: byte for byte,
        with lowercase=False).
      the code_instructions and instruction_files settings: see their
        defaults().
      vocab_min_count, vocab_max_size: Vocabulary.build options (punct).
      max_source_len, max_target_len: longest row, '<eos>' included; 0 = any.
      length_policy: 'truncate' | 'drop' pairs over a limit, in the splits
        listed in length_splits (default train only, so that every eval
        pair is scored).
  """
  s = _merged(data_source, settings)
  for key in ('spm_vocab_size', 'vocab_min_count', 'vocab_max_size',
              'max_source_len', 'max_target_len'):
    s[key] = int(s[key])
  s['length_splits'] = tuple(s['length_splits'])
  s['lowercase'] = bool(s['lowercase'])
  _check_settings(s)
  raw = PAIR_FORMATS.get(data_source)(s)
  if vocabs is not None:
    vocabs = tuple(check_specials(v, f'data.{w}_vocab')
                   for v, w in zip(vocabs, ('source', 'target')))
  if s['cache_dir']:
    encoded = paired_cache.load(
        s['cache_dir'], raw.name, raw.fingerprint, s, vocabs,
        _spm_models(s), lambda writer: _encode(s, raw, vocabs, writer),
        s['spm_dir'])
    toks = _tokenizers(s, raw)  # SentencePiece: the cached models
  else:
    encoded = _encode(s, raw, vocabs)
    toks = encoded['tokenizers']
  vocabs, rows = encoded['vocabs'], encoded['rows']
  if not len(rows['train']['kept']):
    raise DataError(f"data.length_policy='drop' dropped all "
                    f"{encoded['dropped']['train']:,} training pairs; raise "
                    'data.max_source_len / data.max_target_len')
  side = lambda name: {split: rows[split][name] for split in SPLITS}
  references = {split: line_files.selected_lines(raw.target[split],
                                                 rows[split]['kept'])
                for split in SPLITS}
  fingerprint = md5_of(
      [raw.fingerprint, toks[0].settings(), toks[1].settings(),
       vocabs[0].fingerprint, vocabs[1].fingerprint, s['length_policy'],
       str(s['max_source_len']), str(s['max_target_len']),
       ','.join(s['length_splits'])])
  return PairedCorpus(
      name=raw.name, source_lang=s['source_lang'], target_lang=s['target_lang'],
      source_vocab=vocabs[0], target_vocab=vocabs[1],
      source_tokenizer=toks[0], target_tokenizer=toks[1], source=side('source'),
      target=side('target'), references=references, fingerprint=fingerprint,
      truncated=dict(encoded['truncated']), dropped=dict(encoded['dropped']),
      info=dict(raw.info))
