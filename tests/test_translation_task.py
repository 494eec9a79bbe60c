"""The seq2seq task through the one training driver: a reverse task learned
to exact match, exact resume, BLEU in results.json, the translate command."""

import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import rnnlm_jax
from rnnlm_jax import config_checks, configs, decoding, metrics
from rnnlm_jax.data import paired
from rnnlm_jax.data.vocab import Vocabulary
from rnnlm_jax.training import inference, run_files, tasks, trainer, translation

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = 'a b c d e f g h'.split()


def _write_reverse_task(root, seed=0, sizes=(1600, 64, 64)):
  """Parallel files of random word sequences (length 2-5) and their reverse."""
  rng = np.random.default_rng(seed)
  for split, n in zip(('train', 'val', 'test'), sizes):
    src, tgt = [], []
    for _ in range(n):
      words = list(rng.choice(WORDS, rng.integers(2, 6)))
      src.append(' '.join(words))
      tgt.append(' '.join(reversed(words)))
    (root / f'{split}.src').write_text('\n'.join(src) + '\n')
    (root / f'{split}.tgt').write_text('\n'.join(tgt) + '\n')


def reverse_config(data_dir, num_steps=600):
  c = configs.base_config()
  c.task = 'seq2seq'
  c.data.path = str(data_dir)
  c.data.paired.source_lang, c.data.paired.target_lang = 'src', 'tgt'
  c.model.type = 'seq2seq'
  c.model.embed_size = 16
  c.model.dropout = 0.0
  c.model.init_scale = 0.0
  c.model.unroll = 1
  c.model.seq2seq.encoder_hidden = c.model.seq2seq.decoder_hidden = 32
  c.train.batch_size = 32
  c.train.seq_len = 8
  c.train.num_steps = num_steps
  c.train.optimizer, c.train.learning_rate = 'adam', 1e-2
  c.train.schedule = 'constant'
  c.train.clip_norm = 1.0
  c.train.loss_normalization = 'token'
  c.train.log_every_steps = 50
  c.train.eval_every_steps = 200
  c.train.progress_bar = False
  c.eval.batch_size = c.eval.test_batch_size = 32
  c.eval.translate.beam_size = 3
  c.eval.translate.max_len = 8
  c.eval.translate.batch_size = 32
  return c


def train_reverse_run(tmp_path_factory):
  """The reverse task trained to exact match: (config, workdir, results).
  conftest's session fixture `reverse_run` (tests/test_api.py uses it too)."""
  data_dir = tmp_path_factory.mktemp('reverse_data')
  _write_reverse_task(data_dir)
  workdir = str(tmp_path_factory.mktemp('reverse_run'))
  config = reverse_config(data_dir)
  return config, workdir, trainer.train_and_evaluate(config, workdir)


def test_reverse_task_reaches_exact_match(reverse_run):
  config, workdir, results = reverse_run
  for name in ('greedy', 'beam'):
    # Lower-cased BLEU 100 is every test sentence reversed exactly.
    assert results[f'test_{name}_bleu_lowercase'] > 99.0, results
  hypotheses = open(os.path.join(workdir, 'translations.test.beam.txt')).read()
  references = open(os.path.join(config.data.path, 'test.tgt')).read()
  pairs = list(zip(hypotheses.split('\n'), references.split('\n')))[:64]
  assert np.mean([h == r for h, r in pairs]) >= 0.99
  assert results['test_beam_exact_match'] >= 99.0  # the same, as reported (%)
  assert results['test_ppl'] < 1.2  # teacher-forced, per target token
  assert os.path.exists(os.path.join(workdir, 'attention_test0.png'))
  assert 'tok:13a' in results['test_beam_bleu_signature']
  # Throughput counts real target tokens ('<eos>' included, padding not):
  # 600 steps x 32 pairs are 12 epochs of the 1,600 training pairs.
  lines = open(os.path.join(config.data.path, 'train.tgt')).read().splitlines()
  assert results['tokens_trained_this_invocation'] == 12 * sum(
      len(l.split()) + 1 for l in lines)


def translate_on_the_command_line(tmp_path, module: str, config_call: str,
                                  workdir: str, text: str, beam: int) -> str:
  """`python -m rnnlm_jax.experiment translate --text` on a config file whose
  get_config() returns `config_call`, a call of a function of tests/`module`."""
  config_file = tmp_path / 'config.py'
  function = config_call.split('(')[0]
  config_file.write_text(
      'import sys\nsys.path.insert(0, %r)\n' % os.path.join(REPO_ROOT, 'tests')
      + f'from {module} import {function}\n'
      f'def get_config():\n  return {config_call}\n')
  out = subprocess.run(
      [sys.executable, '-m', 'rnnlm_jax.experiment', 'translate', '--config',
       str(config_file), '--workdir', workdir, '--text', text, '--beam', str(beam)],
      capture_output=True, text=True, cwd=REPO_ROOT, check=True)
  return out.stdout.strip()


def test_translate_from_python_and_the_command_line(reverse_run, tmp_path):
  config, workdir, _ = reverse_run
  assert inference.translate(config, workdir, ['a b c', 'h g'], beam=1) == [
      'c b a', 'g h']
  assert translate_on_the_command_line(
      tmp_path, 'test_translation_task', f'reverse_config({config.data.path!r})',
      workdir, 'd e f', beam=3) == 'f e d'


def test_length_penalty_script_scores_each_alpha(reverse_run, monkeypatch, capsys):
  from conftest import load_script  # pylint: disable=import-outside-toplevel
  _, workdir, results = reverse_run
  script = load_script(os.path.join(REPO_ROOT, 'scripts', 'tune_length_penalty.py'),
                       'tune_length_penalty')
  monkeypatch.setattr(sys, 'argv', ['tune_length_penalty.py', '--workdir', workdir,
                                    '--alphas', '0.0,1.0', '--split', 'test'])
  script.main()
  rows = [l.split('|')[1:-1] for l in capsys.readouterr().out.splitlines()
          if l.startswith('| ') and l[2].isdigit()]
  assert [float(r[0]) for r in rows] == [0.0, 1.0]
  # At the run's own alpha (1.0) and beam, the script reproduces results.json.
  assert float(rows[1][3]) == pytest.approx(results['test_beam_bleu_lowercase'], abs=0.01)


def test_translate_with_an_ensemble_of_runs(reverse_run, tmp_path, monkeypatch,
                                           capsys):
  from conftest import load_script  # pylint: disable=import-outside-toplevel
  config, workdir, results = reverse_run
  twin = str(tmp_path / 'twin')  # the same run again: the same translations
  shutil.copytree(workdir, twin)
  model, params, _ = inference.load_translation_ensemble(config, workdir, [twin])
  assert isinstance(model, decoding.Ensemble) and len(model.members) == len(params) == 2
  both = copy.deepcopy(config)
  both.eval.ensemble.members = f' {twin} ,'
  assert inference.translate(both, workdir, ['a b c', 'h g'], beam=3) == [
      'c b a', 'g h']
  script = load_script(os.path.join(REPO_ROOT, 'scripts', 'tune_length_penalty.py'),
                       'tune_length_penalty')
  monkeypatch.setattr(sys, 'argv', ['tune_length_penalty.py', '--workdir', workdir,
                                    '--members', twin, '--alphas', '1.0',
                                    '--split', 'test'])
  script.main()
  (row,) = [l.split('|')[1:-1] for l in capsys.readouterr().out.splitlines()
            if l.startswith('| 1.0')]
  assert float(row[3]) == pytest.approx(results['test_beam_bleu_lowercase'], abs=0.01)
  # A member whose target ids mean other words cannot be mixed in.
  path = paired.vocab_path(twin, 'tgt')
  tokens = list(Vocabulary.load(path).tokens)
  tokens[-1], tokens[-2] = tokens[-2], tokens[-1]
  Vocabulary(tokens).save(path)
  with pytest.raises(ValueError, match=r'twin: its target vocabulary differs'):
    inference.translate(both, workdir, ['a b c'])
  with pytest.raises(ValueError, match=r'nowhere holds no run'):
    inference.load_translation_ensemble(config, workdir, [str(tmp_path / 'nowhere')])


def test_translate_refuses_a_language_model_run(reverse_run):
  config, workdir, _ = reverse_run
  lm = configs.base_config()
  with pytest.raises(ValueError, match="needs a seq2seq run"):
    inference.translate(lm, workdir, ['a b'])
  del config


@pytest.mark.parametrize('model_type', [
    'seq2seq', pytest.param('transformer_seq2seq', marks=pytest.mark.slow)])
def test_seq2seq_resume_is_exact(tmp_path, model_type):
  """Also: the broken run reads its pairs through data.cache_dir (built by
  the first start, reused by the resume) and still equals the straight one."""
  _write_reverse_task(tmp_path, sizes=(320, 32, 32))
  config = reverse_config(tmp_path, num_steps=20)
  if model_type == 'transformer_seq2seq':  # with dropout: the rng resumes too
    from test_transformer_seq2seq import transformer_config  # pylint: disable=import-outside-toplevel
    config = transformer_config(tmp_path, num_steps=20)
    config.model.dropout = config.model.transformer.attention_dropout = 0.1
  config.train.eval_every_steps = 10
  config.train.checkpoint_every_steps = 5
  config.eval.translate.beam_size = 1
  straight = trainer.train_and_evaluate(config, str(tmp_path / 'straight'))
  config.data.cache_dir = str(tmp_path / 'cache')
  broken = str(tmp_path / 'broken')
  calls = []
  real = trainer.train_step

  def crash_at_13(state, batch, carry, **kwargs):
    if len(calls) == 13:
      raise KeyboardInterrupt('killed')
    calls.append(1)
    return real(state, batch, carry, **kwargs)

  trainer.train_step = crash_at_13
  try:
    with pytest.raises(KeyboardInterrupt):
      trainer.train_and_evaluate(config, broken)
  finally:
    trainer.train_step = real
  resumed = trainer.train_and_evaluate(config, broken)
  assert resumed['valid_loss'] == straight['valid_loss']
  _, a, _ = inference.load_trained(config, str(tmp_path / 'straight'), 'latest')
  _, b, _ = inference.load_trained(config, broken, 'latest')
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
  saved = json.loads(open(os.path.join(broken, 'config.json')).read())
  assert saved['task'] == 'seq2seq'
  assert len(os.listdir(tmp_path / 'cache')) == 1  # the resume reused it


@pytest.mark.slow
def test_multi30k_sweep_smoke_writes_bleu_columns(multi30k_dir, tmp_path):
  from rnnlm_jax import sweep  # pylint: disable=import-outside-toplevel
  del multi30k_dir  # the experiment reads it from the data root
  result = sweep.run_sweep(os.path.join(REPO_ROOT, 'experiments', 'multi30k_sweep'),
                           smoke=True, workdir=str(tmp_path),
                           only=('additive_gru', 'dot_lstm'))
  assert [r['arm'] for r in result.runs] == ['additive_gru', 'dot_lstm']
  table = open(result.results_md).read()
  assert 'test BLEU greedy' in table and 'test BLEU beam' in table


def test_the_best_checkpoint_by_validation_chrf(tmp_path, monkeypatch):
  # chrF made to fall while the loss falls: the best step must follow chrF.
  calls = []

  def falling_chrf(*args):
    calls.append(None)
    return {'bleu': 0.0, 'bleu_lowercase': 0.0, 'chrf': 60.0 - 10 * len(calls)}

  task = tasks.TASKS.get('seq2seq')
  monkeypatch.setitem(tasks.TASKS._entries, 'seq2seq', dataclasses.replace(
      task, validation_metrics=falling_chrf))
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  _write_reverse_task(data_dir, sizes=(400, 32, 32))
  config = reverse_config(data_dir, num_steps=80)
  config.train.eval_every_steps = 20
  config.train.best_metric = 'chrf'
  results = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  valid = [line for line in metrics.read_jsonl(str(tmp_path / 'run' / 'metrics.jsonl'))
           if line['split'] == 'valid']
  assert [(line['step'], line['chrf']) for line in valid] == [
      (20, 50.0), (40, 40.0), (60, 30.0), (80, 20.0)]
  assert valid[-1]['loss'] < valid[0]['loss']  # by the loss, 80 would be best
  assert results['best_step'] == 20
  # The metric names what the saved best value is: resuming with another
  # metric is refused in one line.
  config.train.best_metric = 'loss'
  with pytest.raises(run_files.RunMismatchError, match="train.best_metric: 'chrf' -> 'loss'"):
    trainer.train_and_evaluate(config, str(tmp_path / 'run'))


def test_validation_bleu_is_the_greedy_bleu_of_the_final_results(reverse_run):
  config, workdir, results = reverse_run
  run = rnnlm_jax.load(workdir)
  assert translation.validation_bleu(run.params, run.model, run.dataset, config) == {}
  config = copy.deepcopy(config)
  config.eval.translate.valid_bleu = True
  scores = translation.validation_bleu(run.params, run.model, run.dataset, config)
  assert scores['bleu'] == pytest.approx(results['valid_greedy_bleu'])
  assert scores['chrf'] == pytest.approx(results['valid_greedy_chrf'])


@pytest.mark.parametrize('task, metric, match', [
    ('seq2seq', 'BLEU', "must be one of \\('loss', 'bleu'"),
    ('lm', 'bleu', "need task='seq2seq'")])
def test_a_bad_best_metric_is_one_line(task, metric, match):
  c = configs.base_config()
  c.task, c.train.best_metric = task, metric
  with pytest.raises(ValueError, match=match):
    config_checks.validate(c)
  c = configs.base_config()
  c.eval.translate.valid_bleu = True
  with pytest.raises(ValueError, match="eval.translate.valid_bleu=True is invalid: needs task='seq2seq'"):
    config_checks.validate(c)
