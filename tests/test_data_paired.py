"""Paired (sequence-to-sequence) data: readers, errors, tokenizers, vocabs,
length limits and bucketed batching."""

import collections
import gzip
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from rnnlm_jax.data import line_files
from rnnlm_jax.data import paired_batching as pb
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.paired import (BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID,
                                   defaults, load_paired, load_vocabs,
                                   read_pairs)
from rnnlm_jax.data.tokenizers import PunctTokenizer
from rnnlm_jax.data.vocab import Vocabulary

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DE = ['Ein Mann fährt Rad.', 'Zwei Hunde spielen im Schnee.',
      'Eine Frau trägt ein rotes T-Shirt.', 'Ein Kind isst.']
EN = ['A man rides a bike.', 'Two dogs play in the snow.',
      'A woman wears a red T-shirt.', 'A child eats.']


def write(path, lines, gz=False):
  data = ''.join(f'{line}\n' for line in lines).encode('utf-8')
  if gz:
    path = path.with_name(path.name + '.gz')
    data = gzip.compress(data)
  path.write_bytes(data)
  return path


def write_pairs(directory, stems=('train', 'val', 'test'), de=DE, en=EN,
                gz=False):
  directory.mkdir(exist_ok=True)
  for stem in stems:
    write(directory / f'{stem}.de', de, gz)
    write(directory / f'{stem}.en', en, gz)
  return directory


# ---------------------------------------------------------------- real data


@pytest.fixture(scope='module')
def multi30k(multi30k_dir):
  return load_paired('files', path=str(multi30k_dir), source_lang='de',
                     target_lang='en', vocab_min_count=2)


def test_multi30k_counts(multi30k, multi30k_dir):
  assert multi30k.name == 'multi30k'
  for split, n in (('train', 29_000), ('valid', 1_014), ('test', 1_000)):
    src, tgt = multi30k.split(split)
    assert len(src) == len(tgt) == len(multi30k.references[split]) == n
  with gzip.open(multi30k_dir / 'test_2016_flickr.en.gz', 'rt') as f:
    assert multi30k.references['test'] == tuple(f.read().strip().split('\n'))
  for vocab in (multi30k.source_vocab, multi30k.target_vocab):
    assert vocab.tokens[:4] == SPECIALS
  # min count 2: every non-special English token occurs twice in train.
  counts = collections.Counter(
      t for ids in multi30k.target['train'] for t in ids.tolist())
  assert min(counts[i] for i in range(4, len(multi30k.target_vocab))) >= 2
  assert multi30k.dropped == multi30k.truncated == {
      'train': 0, 'valid': 0, 'test': 0}


def test_multi30k_decodes_to_the_lowercased_reference(multi30k):
  _, tgt = multi30k.split('train')
  refs = multi30k.references['train']
  known = [(ids, r) for ids, r in zip(tgt[:3000], refs[:3000])
           if UNK_ID not in ids]
  assert len(known) > 2000
  same = sum(multi30k.decode_target(ids) == ' '.join(r.lower().split())
             for ids, r in known)
  assert same >= 0.99 * len(known)  # the rest: odd spacing in the data


# ------------------------------------------------------------------ readers


def test_plain_and_gzip_files_load_alike(tmp_path):
  plain = load_paired(path=str(write_pairs(tmp_path / 'a')))
  packed = load_paired(path=str(write_pairs(tmp_path / 'b', gz=True)))
  assert plain.source_vocab == packed.source_vocab
  assert plain.references == packed.references
  assert plain.references['test'] == tuple(EN)
  assert plain.decode_source(plain.source['train'][0]) == 'ein mann fährt rad.'


def test_fingerprint_tracks_content_and_settings(tmp_path):
  base = load_paired(path=str(write_pairs(tmp_path / 'a'))).fingerprint
  assert load_paired(path=str(tmp_path / 'a')).fingerprint == base
  assert load_paired(path=str(tmp_path / 'a'),
                     lowercase=False).fingerprint != base
  assert load_paired(path=str(tmp_path / 'a'),
                     max_target_len=4).fingerprint != base
  changed = write_pairs(tmp_path / 'b', en=EN[:3] + ['A kid eats.'])
  assert load_paired(path=str(changed)).fingerprint != base


def test_split_stems_are_configurable(tmp_path):
  d = write_pairs(tmp_path / 'd', stems=('train', 'dev', 'test_2016_flickr',
                                         'test_2017_flickr'))
  # Defaults: 'dev' for valid and the 2016 test set before the 'test*' glob.
  corpus = load_paired(path=str(d))
  assert len(corpus.source['valid']) == len(corpus.source['test']) == 4
  write(d / 'test_2017_flickr.en', EN[:2])
  write(d / 'test_2017_flickr.de', DE[:2])
  corpus = load_paired(path=str(d), split_stems={'test': 'test_2017_flickr'})
  assert corpus.references['test'] == tuple(EN[:2])
  with pytest.raises(DataError, match='matches several'):
    load_paired(path=str(d), split_stems={'test': 'test_*'})


def test_jsonl_with_nested_keys(tmp_path):
  d = tmp_path / 'j'
  d.mkdir()
  for stem in ('train', 'valid', 'test'):
    write(d / f'{stem}.jsonl', [json.dumps({'translation': {'de': s, 'en': t}})
                                for s, t in zip(DE, EN)])
  corpus = load_paired('jsonl', path=str(d), source_key='translation.de',
                       target_key='translation.en')
  assert corpus.references['valid'] == tuple(EN)
  files = load_paired(path=str(write_pairs(tmp_path / 'f')))
  assert corpus.source_vocab == files.source_vocab


def test_jsonl_errors_name_file_and_line(tmp_path):
  d = tmp_path / 'j'
  d.mkdir()
  good = [json.dumps({'de': s, 'en': t}) for s, t in zip(DE, EN)]
  write(d / 'train.jsonl', good)
  write(d / 'test.jsonl', good)
  write(d / 'val.jsonl', good[:2] + ['{"de": "x",'] + good[3:])
  with pytest.raises(DataError, match=r'val\.jsonl:3 is not valid JSON'):
    load_paired('jsonl', path=str(d))
  write(d / 'val.jsonl', good[:1] + [json.dumps({'de': 'x'})])
  with pytest.raises(DataError, match=r"val\.jsonl:2 has no key 'en'"):
    load_paired('jsonl', path=str(d))


# -------------------------------------------------------------- bad inputs


def one_line(excinfo) -> str:
  message = str(excinfo.value)
  assert '\n' not in message
  return message


def test_different_line_counts_name_both_files_and_counts(tmp_path):
  d = write_pairs(tmp_path / 'd')
  write(d / 'val.en', EN[:3])
  with pytest.raises(DataError) as e:
    load_paired(path=str(d))
  message = one_line(e)
  assert str(d / 'val.de') in message and str(d / 'val.en') in message
  assert 'has 4 lines' in message and 'has 3' in message


def test_empty_line_names_file_and_line(tmp_path):
  d = write_pairs(tmp_path / 'd')
  write(d / 'train.en', EN[:2] + ['  '] + EN[3:], gz=False)
  with pytest.raises(DataError) as e:
    load_paired(path=str(d))
  assert f'{d / "train.en"}:3 is an empty line' in one_line(e)


def test_non_utf8_names_file_and_line(tmp_path):
  d = write_pairs(tmp_path / 'd')
  (d / 'test.de').unlink()
  lines = [s.encode('utf-8') for s in DE]
  lines[1] = 'Zwei Hunde spielen im Schnee, schön.'.encode('latin-1')
  (d / 'test.de.gz').write_bytes(gzip.compress(b'\n'.join(lines) + b'\n'))
  with pytest.raises(DataError) as e:
    load_paired(path=str(d))
  assert f'{d / "test.de.gz"}:2 is not UTF-8' in one_line(e)


def test_missing_language_file_names_the_expected_path(tmp_path):
  d = write_pairs(tmp_path / 'd')
  (d / 'val.en').unlink()
  with pytest.raises(DataError) as e:
    load_paired(path=str(d))
  assert f'{d / "val.en"}[.gz] does not exist' in one_line(e)
  with pytest.raises(DataError) as e:
    load_paired(path=str(d), source_lang='fr')
  assert f'{d / "train.fr"}[.gz] does not exist' in one_line(e)


@pytest.mark.parametrize('settings, fragment', [
    ({'path': ''}, 'data.path is empty'),
    ({'tokenizer': 'moses'}, "data.tokenizer='moses'"),
    ({'length_policy': 'cut'}, "data.length_policy='cut'"),
    ({'max_source_len': 1}, 'data.max_source_len=1'),
    ({'vocab_min_count': 0}, 'data.vocab_min_count=0'),
    ({'tokenizer': 'sentencepiece'}, 'data.spm_dir'),
    ({'split_stems': {'dev': 'x'}}, "data.split_stems key 'dev'"),
    ({'max_len': 8}, "unknown paired data setting(s) ['max_len']"),
    ({'target_lang': 'de'}, "data.target_lang='de' must be two different"),
])
def test_bad_settings(tmp_path, settings, fragment):
  settings.setdefault('path', str(write_pairs(tmp_path / 'd')))
  with pytest.raises(DataError) as e:
    load_paired(**settings)
  assert fragment in one_line(e)


def test_empty_file_is_an_error(tmp_path):
  d = write_pairs(tmp_path / 'd')
  (d / 'test.en').write_text('\n\n')
  with pytest.raises(DataError) as e:
    load_paired(path=str(d))
  assert f'{d / "test.en"} is empty' in one_line(e)


def test_defaults_are_the_settings(tmp_path):
  settings = dict(defaults(), path=str(write_pairs(tmp_path / 'd')))
  assert load_paired(**settings).fingerprint == load_paired(
      path=settings['path']).fingerprint


def test_stats_script_runs(tmp_path):
  d = write_pairs(tmp_path / 'd')
  out = subprocess.run(
      [sys.executable, 'scripts/seq2seq_data_stats.py', '--path', str(d),
       '--batch_size', '2'], capture_output=True, text=True, check=True,
      cwd=REPO_ROOT).stdout
  assert '| punct, lower-cased, min count 2 | en | 6 |' in out
  assert '| train | de | 4 |' in out and 'bucketed' in out


def test_both_plain_and_gzip_is_an_error(tmp_path):
  d = write_pairs(tmp_path / 'd')
  write(d / 'train.en', EN, gz=True)
  with pytest.raises(DataError, match=r'both .*train\.en and .*train\.en\.gz'):
    load_paired(path=str(d))


# --------------------------------------------------------------- tokenizers


@pytest.mark.parametrize('sentence', [
    'Ein Mann in einem blauen Hemd steht auf einer Leiter und putzt ein '
    'Fenster.',
    'Zwei- und vierbeinige Nachbarn (ca. 1.000) kommen vorbei!',
    'Ein Junge sagt: „Komm her!“, und läuft weg.',
    "A man's dog isn't \"happy\" today; it costs 3.50 dollars?",
    'Two young, White males are outside near many bushes.',
])
def test_punct_round_trip(sentence):
  tok = PunctTokenizer(lowercase=False)
  tokens = tok.tokenize(sentence)
  assert tok.detokenize(tokens) == sentence
  # Punctuation is split off words (numbers keep their separators).
  words = [t for t in tokens if t[0].isalpha()]
  assert not any(p in w for w in words for p in '.,!?;:()„“"')


def test_punct_splits_punctuation_keeps_inner_hyphens():
  tok = PunctTokenizer(lowercase=True)
  assert tok.tokenize("Ein T-Shirt, 3,50 €. Isn't it?") == [
      'ein', 't-shirt', ',', '3,50', '€', '.', "isn't", 'it', '?']


def test_sentencepiece_trains_saves_and_reloads(tmp_path):
  d = write_pairs(tmp_path / 'd', de=DE * 5, en=EN * 5)
  work = tmp_path / 'work'
  first = load_paired(path=str(d), tokenizer='sentencepiece', spm_vocab_size=40,
                      spm_dir=str(work))
  assert (work / 'spm.de.model').is_file() and (work / 'spm.en.model').is_file()
  tok = first.target_tokenizer
  assert len(tok.pieces) <= 40
  assert first.target_vocab.tokens[:4] == SPECIALS
  for sentence in EN:
    assert tok.detokenize(tok.tokenize(sentence)) == sentence.lower()
  assert first.decode_target(first.target['test'][1]) == EN[1].lower()
  model = (work / 'spm.en.model').read_bytes()
  again = load_paired(path=str(d), tokenizer='sentencepiece', spm_vocab_size=40,
                      spm_dir=str(work))
  # Reloaded from the workdir, not retrained.
  assert (work / 'spm.en.model').read_bytes() == model
  assert again.fingerprint == first.fingerprint
  assert again.target_vocab == first.target_vocab
  # Other settings than the saved model's are an error, not a silent reuse.
  with pytest.raises(DataError) as e:
    load_paired(path=str(d), tokenizer='sentencepiece', spm_vocab_size=50,
                spm_dir=str(work))
  assert 'spm.de.model was trained with other settings' in one_line(e)
  assert 'vocab_size 40 (now 50)' in one_line(e)
  (work / 'spm.en.model').write_bytes(b'not a model')
  with pytest.raises(DataError, match='cannot load SentencePiece model'):
    load_paired(path=str(d), tokenizer='sentencepiece', spm_vocab_size=40,
                spm_dir=str(work))


# ------------------------------------------------------------------- vocabs


def test_vocab_min_count_max_size_and_reload(tmp_path):
  d = write_pairs(tmp_path / 'd')
  corpus = load_paired(path=str(d), vocab_min_count=2)
  # Only 'a', '.' occur twice or more on the English side.
  tok = PunctTokenizer()
  counts = collections.Counter(t for s in EN for t in tok.tokenize(s))
  assert set(corpus.target_vocab.tokens[4:]) == {
      t for t, n in counts.items() if n >= 2}
  assert len(load_paired(path=str(d), vocab_max_size=6).target_vocab) == 6
  corpus.save_vocabs(tmp_path / 'work')
  vocabs = load_vocabs(tmp_path / 'work', 'de', 'en')
  assert vocabs == (corpus.source_vocab, corpus.target_vocab)
  again = load_paired(path=str(d), vocabs=vocabs)
  for a, b in zip(again.target['train'], corpus.target['train']):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(DataError, match='must start with'):
    load_paired(path=str(d), vocabs=(Vocabulary(['<unk>', 'a']),) * 2)


# ------------------------------------------------------------- length limits


def test_truncate_and_drop_counts(tmp_path):
  d = write_pairs(tmp_path / 'd')
  # Source rows (tokens + '<eos>') 6, 7, 8, 5: max_source_len=6 cuts two.
  cut = load_paired(path=str(d), max_source_len=6)
  assert cut.truncated == {'train': 2, 'valid': 0, 'test': 0}
  assert max(len(s) + 1 for s in cut.source['train']) == 6
  assert max(len(s) + 1 for s in cut.source['test']) == 8  # eval untouched
  assert cut.references['train'] == tuple(EN)  # references stay whole
  dropped = load_paired(path=str(d), max_source_len=6, max_target_len=6,
                        length_policy='drop')
  # Target rows 7, 8, 8, 5: pairs 0, 1 and 2 are too long on some side.
  assert dropped.dropped == {'train': 3, 'valid': 0, 'test': 0}
  assert dropped.references['train'] == (EN[3],)
  both = load_paired(path=str(d), max_source_len=6, length_policy='drop',
                     length_splits=('train', 'valid', 'test'))
  assert both.dropped == {'train': 2, 'valid': 2, 'test': 2}
  with pytest.raises(DataError, match='dropped all'):
    load_paired(path=str(d), max_source_len=2, length_policy='drop')


# ----------------------------------------------------------------- batching


def fake_pairs(n, seed=0, max_len=40):
  """Pair i: source all (4 + i), target all (5 + i), random lengths."""
  rng = np.random.default_rng(seed)
  src_len = rng.integers(1, max_len, n)
  tgt_len = np.clip(src_len + rng.integers(-3, 4, n), 1, None)
  source = [np.full(k, 4 + i, np.int32) for i, k in enumerate(src_len)]
  target = [np.full(k, 5 + i, np.int32) for i, k in enumerate(tgt_len)]
  return source, target


def pair_ids(batch):
  """Pair index of each real row (padding rows excluded)."""
  real = batch.source_mask[:, 0] > 0
  return (batch.source[real, 0] - 4).tolist()


def test_every_pair_once_and_masks_match_lengths():
  source, target = fake_pairs(203)
  batches = list(pb.pair_batches(source, target, 16, seed=3, epoch=1))
  assert len(batches) == pb.num_batches(203, 16) == 13
  seen = [i for b in batches for i in pair_ids(b)]
  assert sorted(seen) == list(range(203))
  for b in batches:
    assert b.source.shape[0] == b.inputs.shape[0] == 16
    assert b.source.shape[1] % 8 == 0 and b.inputs.shape[1] % 8 == 0
    assert b.source.dtype == b.inputs.dtype == b.targets.dtype == np.int32
    assert b.mask.dtype == b.source_mask.dtype == np.float32
    for r, i in enumerate(b.source[:, 0] - 4):
      if b.source_mask[r, 0] == 0:
        assert not b.mask[r].any() and not b.source[r].any()
        continue
      ns, nt = len(source[i]), len(target[i])
      assert b.source_mask[r].sum() == ns + 1 and b.mask[r].sum() == nt + 1
      assert b.source[r, ns] == EOS_ID
      assert (b.source[r, ns + 1:] == PAD_ID).all()
      assert b.inputs[r, 0] == BOS_ID
      np.testing.assert_array_equal(b.inputs[r, 1:nt + 1], target[i])
      np.testing.assert_array_equal(b.targets[r, :nt], target[i])
      assert b.targets[r, nt] == EOS_ID
      np.testing.assert_array_equal(b.mask[r] > 0, b.targets[r] != PAD_ID)


def assert_same_batches(xs, ys):
  assert len(xs) == len(ys)
  for x, y in zip(xs, ys):
    for a, b in zip(x, y):
      np.testing.assert_array_equal(a, b)


def test_order_is_a_function_of_seed_and_epoch():
  source, target = fake_pairs(150)
  run = lambda **kw: list(pb.pair_batches(source, target, 8, **kw))
  assert_same_batches(run(seed=1, epoch=2), run(seed=1, epoch=2))
  order = lambda **kw: [i for b in run(**kw) for i in pair_ids(b)]
  assert order(seed=1, epoch=2) != order(seed=1, epoch=3)
  assert order(seed=1, epoch=2) != order(seed=2, epoch=2)


def test_start_resumes_and_rows_slice():
  source, target = fake_pairs(150)
  full = list(pb.pair_batches(source, target, 8, seed=0, epoch=4))
  assert_same_batches(
      list(pb.pair_batches(source, target, 8, seed=0, epoch=4, start=7)),
      full[7:])
  part = list(pb.pair_batches(source, target, 8, seed=0, epoch=4,
                              rows=(2, 6)))
  assert_same_batches(part, [pb.PairBatch(*(a[2:6] for a in b)) for b in full])
  with pytest.raises(DataError, match='start='):
    next(pb.pair_batches(source, target, 8, start=len(full) + 1))
  with pytest.raises(DataError, match='rows='):
    next(pb.pair_batches(source, target, 8, rows=(4, 9)))


def test_bucketing_reduces_padding_to_few_shapes():
  source, target = fake_pairs(2000)
  kw = dict(seed=0, epoch=0, chunk_batches=16)
  bucketed = pb.epoch_stats(source, target, 32, **kw)
  random = pb.epoch_stats(source, target, 32, bucketed=False, **kw)
  assert bucketed['padding'] < 0.5 * random['padding']
  assert sum(bucketed['shapes'].values()) == pb.num_batches(2000, 32)
  fixed = pb.epoch_stats(source, target, 32, boundaries=(16, 32, 48), **kw)
  assert set(fixed['shapes']) <= {(s, t) for s in (16, 32, 48)
                                  for t in (16, 32, 48)}
  assert pb.padding_fraction(source, target, 32, **kw) == bucketed['padding']


def test_eval_batches_in_order_with_masked_padding_rows():
  source, target = fake_pairs(21)
  batches = list(pb.eval_batches(source, target, 8))
  assert len(batches) == 3
  assert [i for b in batches for i in pair_ids(b)] == list(range(21))
  last = batches[-1]
  assert last.mask[5:].sum() == 0 and last.source_mask[5:].sum() == 0
  assert sum(b.mask.sum() for b in batches) == sum(len(t) + 1 for t in target)
  dropped = list(pb.pair_batches(source, target, 8, drop_last=True))
  assert len(dropped) == pb.num_batches(21, 8, drop_last=True) == 2


# --------------------------------------------------------------------- tfds


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  # A translation dataset shaped like wmt14_translate/de-en (features named
  # by language), prepared as array_record so no TensorFlow is needed.
  class RnnlmJaxTinyTranslate(tfds.core.GeneratorBasedBuilder,
                              skip_registration=True):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self, features=tfds.features.Translation(
              languages=('de', 'en')))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {s: self._generate_examples()
              for s in ('train', 'validation', 'test')}

    def _generate_examples(self):
      for i, (de, en) in enumerate(zip(DE, EN)):
        yield i, {'de': de, 'en': en}

  path = tmp_path_factory.mktemp('tfds')
  RnnlmJaxTinyTranslate(data_dir=str(path),
                        file_format='array_record').download_and_prepare()
  return path


def test_tfds_translation_dataset(tfds_dir):
  corpus = load_paired('tfds', tfds_name='rnnlm_jax_tiny_translate',
                       tfds_data_dir=str(tfds_dir))
  assert corpus.name == 'tfds:rnnlm_jax_tiny_translate'
  # tfds orders examples by key hash: compare the pairs as sets.
  pairs = set(zip((corpus.decode_source(s) for s in corpus.source['test']),
                  corpus.references['test']))
  assert pairs == {(d.lower(), e) for d, e in zip(DE, EN)}
  # The train split is streamed from the prepared files, in the same order
  # on every pass.
  raw = read_pairs('tfds', tfds_name='rnnlm_jax_tiny_translate',
                   tfds_data_dir=str(tfds_dir))
  assert isinstance(raw.target['train'], line_files.Streamed)
  assert list(raw.target['train']) == list(raw.target['train'])
  assert sorted(raw.target['train']) == sorted(EN)
  assert corpus.references['train'] == list(raw.target['train'])
  with pytest.raises(DataError) as e:
    load_paired('tfds', tfds_name='rnnlm_jax_tiny_translate',
                tfds_data_dir=str(tfds_dir), source_lang='fr')
  assert "language 'fr' is not a feature" in one_line(e)


def test_tfds_unknown_dataset_is_one_line(tmp_path):
  with pytest.raises(DataError) as e:
    load_paired('tfds', tfds_name='no_such_translation_xyz',
                tfds_data_dir=str(tmp_path))
  assert 'no_such_translation_xyz' in one_line(e)
