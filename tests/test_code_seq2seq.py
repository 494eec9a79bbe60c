"""task='seq2seq' on code_instructions pairs: code_bpe keeps code exactly."""

import json
import os

import pytest

from rnnlm_jax.data import DataError, paired
from rnnlm_jax.data.sources import stdlib as stdlib_source
from tests.test_code_instructions import _names_per_split
from tests.test_translation_task import reverse_config

SETTINGS = dict(tokenizer='sentencepiece', spm_model_type='code_bpe',
                lowercase=False, spm_vocab_size=400, min_response_chars=1,
                source_lang='doc', target_lang='py')


def _module(split: str, n: int) -> str:
  out = []
  for i in range(n):
    out.append(
        f'def {split}_step{i}(items, scale={i}):\n'
        f'  """Scale every item of the {split} list by {i}.\n\n  Details.\n  """\n'
        f'  result = []\n  for item in items:\n'
        f'    result.append(item * scale)\t# a tab, é\n'
        if i % 3 == 0 else
        f'def {split}_step{i}(items, scale={i}):\n'
        f'  """Scale every item of the {split} list by {i}."""\n'
        f'  result = []\n  for item in items:\n'
        f'    result.append(item * scale)   # {i}\n')
    out.append('  return result\n\n\n')
  return ''.join(out)


def _short_module(split: str, n: int) -> str:
  # Responses of ~10 pieces: few padded shapes, so the run compiles little.
  return ''.join(f'def f{i}(x):\n  """Times {i} in {split}."""\n'
                 f'  return x * {i}\n\n' for i in range(n))


def _write_stdlib(root, monkeypatch, module):
  root.mkdir()
  for split, name in _names_per_split(stdlib_source.split_of).items():
    (root / name).write_text(module(split, 30 if split == 'train' else 6))
  monkeypatch.setattr(stdlib_source, 'stdlib_root', lambda: root)


@pytest.fixture
def code_stdlib(tmp_path, monkeypatch):
  _write_stdlib(tmp_path / 'lib', monkeypatch, _module)
  return tmp_path


def test_code_bpe_targets_round_trip_exactly(code_stdlib):
  raw = paired.read_pairs('code_instructions', **SETTINGS)
  corpus = paired.load_paired('code_instructions', spm_dir=str(code_stdlib),
                              **SETTINGS)
  assert corpus.info['functions'] == {s: len(raw.target[s]) for s in raw.target}
  for split in ('train', 'valid', 'test'):
    _, target = corpus.split(split)
    assert any('\t' in x for x in raw.target[split])
    for ids, response in zip(target, raw.target[split]):
      assert corpus.decode_target(ids) == response
    assert list(corpus.references[split]) == raw.target[split]
  source, _ = corpus.split('valid')
  assert corpus.decode_source(source[0]) == raw.source['valid'][0]


def test_code_bpe_refuses_lowercase(code_stdlib):
  with pytest.raises(DataError, match='data.lowercase=False'):
    paired.load_paired('code_instructions', spm_dir=str(code_stdlib),
                       **dict(SETTINGS, lowercase=True))


@pytest.mark.slow  # ~30 s of compiling (train, score, greedy, beam, attention)
def test_seq2seq_trains_on_code_pairs(tmp_path, monkeypatch):
  from rnnlm_jax.training import trainer  # pylint: disable=import-outside-toplevel
  _write_stdlib(tmp_path / 'lib', monkeypatch, _short_module)
  config = reverse_config(tmp_path, num_steps=6)
  p = config.data.paired
  p.format, p.source_lang, p.target_lang = 'code_instructions', 'doc', 'py'
  p.tokenizer, p.spm_model_type, p.spm_vocab_size = 'sentencepiece', 'code_bpe', 300
  p.min_response_chars = 1
  config.data.lowercase = False
  config.train.eval_every_steps = 6
  config.train.batch_size = 8
  config.eval.batch_size = config.eval.test_batch_size = 8
  config.eval.translate.batch_size = 8
  config.eval.translate.beam_size = 2
  config.eval.translate.max_len = 4
  workdir = str(tmp_path / 'run')
  results = trainer.train_and_evaluate(config, workdir)
  assert results['steps'] == 6
  assert results['data_info']['format'] == 'code_instructions'
  assert 0.0 <= results['test_beam_exact_match'] <= 100.0
  assert 0.0 <= results['test_greedy_parse_rate'] <= 100.0
  saved = json.load(open(os.path.join(workdir, 'results.json')))
  assert saved['data_info']['functions'] == results['data_info']['functions']
  assert os.path.exists(os.path.join(workdir, 'spm.py.model'))
  # Multi-line code outputs: one JSON record per test pair, not lines of text.
  references = []
  for name in ('greedy', 'beam'):
    path = os.path.join(workdir, f'responses_test_{name}.jsonl')
    records = [json.loads(l) for l in open(path)]
    assert records and {'instruction', 'reference', 'response', 'parses'} <= set(records[0])
    references.append([r['reference'] for r in records])
  assert references[0] == references[1] and any('\n' in r for r in references[0])
  assert not os.path.exists(os.path.join(workdir, 'translations.test.beam.txt'))


def test_experiment_config_settings_are_load_paired_settings():
  from rnnlm_jax import sweep  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import translation  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = sweep.load_module(os.path.join(
      root, 'experiments/code_instructions_gru/config.py')).get_config()
  settings = translation.paired_settings(config, '/tmp/unused')
  assert set(settings) <= set(paired.defaults())
  assert settings['spm_model_type'] == 'code_bpe'
  assert not settings['lowercase'] and settings['code_stdlib']
