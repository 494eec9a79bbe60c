"""Sweeps: a smoke sweep end to end on a tiny synthetic experiment, resumability,
the report, and the shipped sweep experiments' arms (configs and matched sizes)."""

import json
import math
import os
import pathlib
import re

import jax
import jax.numpy as jnp
import pytest

from rnnlm_jax import config_checks, configs, models, report, sweep

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / 'experiments'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'

TINY_EXPERIMENT = '''
from rnnlm_jax import configs

def get_config():
  c = configs.base_config()
  c.data.source = 'synthetic'
  c.data.level = 'word'
  c.data.synthetic.vocab_size = 12
  c.data.synthetic.order = 1
  c.data.synthetic.tokens = (1000, 200, 200)
  c.train.num_epochs = 50  # the full sweep: never run by the test
  return c

# 'lstm' runs with two seeds (aggregated), 'gru' with the base seed.
def sweep():
  return [('lstm', {'model.cell': 'lstm', 'seed': 0}),
          ('lstm', {'model.cell': 'lstm', 'seed': 1}),
          ('gru', {'model.cell': 'gru'})]

SMOKE = {'train.num_steps': 6, 'train.eval_every_steps': 3,
         'train.optimizer': 'adam', 'train.learning_rate': 0.01,
         'model.hidden_size': 8, 'model.embed_size': 8}
'''


@pytest.fixture
def tiny_experiment(tmp_path):
  folder = tmp_path / 'tiny'
  folder.mkdir()
  (folder / 'config.py').write_text(TINY_EXPERIMENT)
  return folder


def _table_rows(markdown):
  return {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
          for line in markdown.splitlines()
          if line.startswith('| ') and not line.startswith(('| arm', '| ---'))}


def test_smoke_sweep_writes_table_and_plot_and_resumes(tiny_experiment):
  result = sweep.run_sweep(str(tiny_experiment), smoke=True, log=lambda _: None)
  smoke_root = tiny_experiment / 'workdir' / sweep.SMOKE_DIR
  assert [(r['arm'], r['seed'], r['status']) for r in result.runs] == [
      ('lstm', 0, 'ran'), ('lstm', 1, 'ran'), ('gru', 0, 'ran')]
  for arm, seed in (('lstm', 0), ('lstm', 1), ('gru', 0)):
    assert (smoke_root / arm / f'seed{seed}' / 'results.json').exists()
  assert pathlib.Path(result.results_md) == smoke_root / 'results.md'
  assert not (tiny_experiment / 'results.md').exists()  # smoke stays in workdir

  rows = _table_rows(pathlib.Path(result.results_md).read_text())
  assert set(rows) == {'lstm', 'gru'}
  number = r'[0-9][0-9,]*(\.[0-9]+)?'
  for arm, seeds in (('lstm', 2), ('gru', 1)):
    params, valid, test, wall, tokens_per_s, n = rows[arm]
    assert re.fullmatch(number, params) and int(params.replace(',', '')) > 0
    pattern = number + (r' ± ' + number if seeds > 1 else '')
    assert re.fullmatch(pattern, valid), valid
    assert re.fullmatch(pattern, test), test
    assert 1 < float(valid.split()[0]) < 30  # a perplexity, about 12 words
    assert re.fullmatch(number + ' (s|min|h)', wall)
    assert re.fullmatch(number, tokens_per_s)
    assert n == str(seeds)
  png = pathlib.Path(result.curves_png)
  assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 1000

  mtimes = {p: p.stat().st_mtime_ns for p in smoke_root.glob('*/seed*/results.json')}
  again = sweep.run_sweep(str(tiny_experiment / 'config.py'), smoke=True,
                          log=lambda _: None)
  assert [r['status'] for r in again.runs] == ['skipped'] * 3
  assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
  assert _table_rows(pathlib.Path(again.results_md).read_text()) == rows


def test_seeds_select_runs_and_the_report_keeps_the_finished_ones(tiny_experiment):
  quiet = {'smoke': True, 'log': lambda _: None}
  first = sweep.run_sweep(str(tiny_experiment), seeds=['1'], **quiet)
  assert [(r['arm'], r['seed'], r['status']) for r in first.runs] == [('lstm', 1, 'ran')]
  both = sweep.run_sweep(str(tiny_experiment), seeds=[0], **quiet)
  assert [(r['arm'], r['seed'], r['status']) for r in both.runs] == [
      ('lstm', 0, 'ran'), ('lstm', 1, 'skipped'), ('gru', 0, 'ran')]
  assert set(_table_rows(pathlib.Path(both.results_md).read_text())) == {'lstm', 'gru'}
  with pytest.raises(ValueError, match=r'--seeds: no run has seed \[7\]; seeds: \[0, 1\]'):
    sweep.run_sweep(str(tiny_experiment), seeds=[7], **quiet)


def test_arms_seeds_and_overrides(tiny_experiment):
  module = sweep.load_module(str(tiny_experiment / 'config.py'))
  arms = sweep.arms(module)
  assert [(a.name, a.seed, a.subdir) for a in arms] == [
      ('lstm', 0, os.path.join('lstm', 'seed0')),
      ('lstm', 1, os.path.join('lstm', 'seed1')), ('gru', 0, os.path.join('gru', 'seed0'))]
  config = sweep.arm_config(module, arms[2], smoke=True)
  assert (config.model.cell, config.seed, config.model.hidden_size) == ('gru', 0, 8)
  assert config.train.num_steps == 6  # the experiment's SMOKE wins over the default
  assert config.data.max_train_tokens == sweep.DEFAULT_SMOKE['data.max_train_tokens']
  with pytest.raises(ValueError, match=r"arm 'x'.*model\.cel"):
    sweep.apply_overrides(configs.base_config(), {'model.cel': 'gru'}, "sweep arm 'x'")
  module.SEEDS = (3, 4)
  assert [(a.name, a.seed) for a in sweep.arms(module)][-2:] == [('gru', 3), ('gru', 4)]


def test_cli_accepts_the_folder_as_config():
  argv = ['prog', 'sweep', '--config', 'experiments/x', '--smoke']
  assert sweep.positional_experiment(argv) == ['prog', 'sweep', 'experiments/x', '--smoke']
  assert sweep.positional_experiment(['prog', 'sweep', '--config=experiments/x/config.py']) \
      == ['prog', 'sweep', 'experiments/x/config.py']
  train = ['prog', 'train', '--config', 'experiments/x/config.py']
  assert sweep.positional_experiment(train) == train
  assert sweep.experiment_dir(str(EXPERIMENTS / 'ablation_cells' / 'config.py')) == \
      str(EXPERIMENTS / 'ablation_cells')


def test_report_aggregates_char_level_as_bits(tmp_path):
  runs = [{'arm': 'a', 'seed': s, 'workdir': str(tmp_path), 'wall_s': 30.0,
           'results': {'level': 'char', 'num_params': 1234, 'valid_bits': b,
                       'test_bits': b + 0.1, 'tokens_per_s_this_invocation': 100.0}}
          for s, b in ((0, 1.5), (1, 1.7))]
  table = report.markdown_table(runs)
  assert 'valid bits/char' in table
  assert '| a | 1,234 | 1.600 ± 0.141 | 1.700 ± 0.141 | 30.0 s | 100 | 2 |' in table


def test_report_leaves_out_time_of_an_invocation_that_only_evaluated(tmp_path):
  def run(seed, wall_s, tokens):
    return {'arm': 'a', 'seed': seed, 'workdir': str(tmp_path), 'wall_s': wall_s,
            'results': {'level': 'word', 'num_params': 10, 'valid_ppl': 5.0,
                        'test_ppl': 6.0, 'tokens_trained_this_invocation': tokens,
                        'tokens_per_s_this_invocation': tokens / wall_s}}
  table = report.markdown_table([run(0, 60.0, 6000.0), run(1, 5.0, 0.0)])
  assert '| a | 10 | 5.00 ± 0.00 | 6.00 ± 0.00 | 60.0 s | 100 | 2 |' in table
  assert '| n/a | n/a | 1 |' in report.markdown_table([run(1, 5.0, 0.0)])


def test_report_shows_the_time_of_all_invocations_when_results_have_it(tmp_path):
  resumed = {'arm': 'a', 'seed': 0, 'workdir': str(tmp_path), 'wall_s': 20.0,
             'results': {'level': 'word', 'num_params': 10, 'valid_ppl': 5.0,
                         'test_ppl': 6.0, 'train_seconds': 300.0,
                         'train_seconds_this_invocation': 20.0,
                         'tokens_trained_this_invocation': 0.0}}
  assert '| 5.0 min | n/a | 1 |' in report.markdown_table([resumed])


def _write_metrics(workdir, entries):
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / 'metrics.jsonl').write_text(
      ''.join(json.dumps(e) + '\n' for e in entries) + '{"torn', encoding='utf-8')


def test_report_curves_read_both_splits_and_derive_bits_from_the_loss(tmp_path):
  _write_metrics(tmp_path / 'run', [
      {'step': 10, 'split': 'train', 'loss': 2 * math.log(2), 'ppl': 4.0},
      {'step': 20, 'split': 'valid', 'loss': 1.0, 'ppl': 2.7, 'bits': 1.44},
      {'step': 20, 'split': 'final_valid', 'loss': 1.0, 'bits': 1.44}])
  run = str(tmp_path / 'run')
  assert report.metric_curve(run, 'train', 'bits') == {10: pytest.approx(2.0)}
  assert report.metric_curve(run, 'train', 'ppl') == {10: 4.0}
  assert report.metric_curve(run, 'valid', 'bits') == {20: 1.44}


def test_report_plots_words_and_chars_in_separate_panels(tmp_path):
  def run(arm, level):
    _write_metrics(tmp_path / arm, [{'step': 1, 'split': 'valid', 'ppl': 9.0,
                                     'bits': 3.0, 'loss': 2.2}])
    return {'arm': arm, 'seed': 0, 'workdir': str(tmp_path / arm),
            'results': {'level': level}}

  def png_width(path):  # the IHDR chunk: width, big-endian, at bytes 16-19
    return int.from_bytes(pathlib.Path(path).read_bytes()[16:20], 'big')

  words = report.plot_learning_curves([run('w', 'word')], str(tmp_path / 'a.png'))
  both = report.plot_learning_curves([run('w', 'word'), run('c', 'char')],
                                     str(tmp_path / 'b.png'))
  assert png_width(both) == 2 * png_width(words)


def test_arm_refs_name_an_earlier_arms_workdir(tmp_path):
  planned = [sweep.Arm('pre', 0, {'model.cell': 'lstm'}),
             sweep.Arm('tuned', 0, {'train.init_from': '{arm:pre}',
                                    'model.hidden_size': 8})]
  resolved = sweep.resolve_arm_refs(planned, str(tmp_path))
  assert resolved[0] == planned[0]
  assert resolved[1].overrides == {
      'train.init_from': os.path.join(str(tmp_path), 'pre', 'seed0'),
      'model.hidden_size': 8}
  with pytest.raises(ValueError, match=r"'tuned'.*no earlier arm 'pre'"):
    sweep.resolve_arm_refs(planned[::-1], str(tmp_path))


def test_report_shows_score_columns_only_when_an_arm_has_them(tmp_path):
  base = {'level': 'word', 'num_params': 10, 'valid_ppl': 5.0, 'test_ppl': 6.0}
  runs = [{'arm': 'a', 'seed': 0, 'workdir': str(tmp_path), 'results': base}]
  assert 'chrF' not in report.markdown_table(runs)
  runs.append({'arm': 'b', 'seed': 0, 'workdir': str(tmp_path),
               'results': dict(base, test_greedy_chrf=41.234,
                               test_greedy_parse_rate=87.5)})
  table = report.markdown_table(runs)
  assert '| test chrF | test parses % |' in table and 'exact match' not in table
  assert '| b | 10 | 5.00 | 6.00 | 41.23 | 87.50 |' in table
  assert '| a | 10 | 5.00 | 6.00 | n/a | n/a |' in table


SHIPPED = ['ablation_cells', 'ablation_cells_char', 'ablation_zaremba_dropout',
           'ablation_xlstm', 'lstm_vs_transformer', 'multi30k_sweep',
           'multi30k_tuning',
           'code_instructions']


@pytest.mark.parametrize('name', SHIPPED)
@pytest.mark.parametrize('smoke', [False, True])
def test_shipped_sweeps_have_valid_arms(name, smoke):
  module = sweep.load_module(str(EXPERIMENTS / name / 'config.py'))
  arms = sweep.arms(module, smoke)
  assert len({a.name for a in arms}) >= 2
  for arm in arms:
    config = sweep.arm_config(module, arm, smoke)
    config_checks.validate(config)
    models.validate(config.model)
    if smoke:
      assert config.train.num_steps <= 10
  assert 'python -m rnnlm_jax.experiment sweep experiments/' + name in module.__doc__


def _num_params(model_config, vocab_size=10_000):  # PTB's vocabulary
  model = models.make_model(model_config, vocab_size)
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 4), jnp.int32), model.initial_carry(1),
      train=False))['params']
  return models.count_params(shapes)


@pytest.mark.parametrize('name', ['ablation_cells', 'lstm_vs_transformer'])
def test_arms_have_matched_parameter_counts(name):
  module = sweep.load_module(str(EXPERIMENTS / name / 'config.py'))
  counts = {a.name: _num_params(sweep.arm_config(module, a).model)
            for a in sweep.arms(module)}
  reference = counts['lstm']
  assert reference == 4_651_600  # the zaremba_small model
  for arm, count in counts.items():
    assert abs(count / reference - 1) < 0.02, (arm, count, reference)


def test_dropout_ablation_is_the_medium_config_but_for_dropout():
  module = sweep.load_module(str(EXPERIMENTS / 'ablation_zaremba_dropout' / 'config.py'))
  medium = sweep.load_module(str(EXPERIMENTS / 'zaremba_medium' / 'config.py'))
  rates = {}
  for arm in sweep.arms(module):
    config = sweep.arm_config(module, arm)
    m = config.model
    assert m.dropout_embed == m.dropout == m.dropout_output
    rates[arm.name] = m.dropout
    m.dropout_embed = m.dropout = m.dropout_output = 0.5
    assert config.to_dict() == medium.get_config().to_dict()
  assert rates == {'dropout0': 0.0, 'dropout0.25': 0.25, 'dropout0.5': 0.5}
