"""The command line end to end on real PTB: train -> eval -> generate -> resume."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

ZAREMBA = str(REPO_ROOT / 'experiments' / 'zaremba_small' / 'config.py')
TINY = ['--config.model.hidden_size=32', '--config.model.embed_size=32',
        '--config.train.log_every_steps=5', '--config.train.progress_bar=false',
        '--config.data.max_eval_tokens=2000', '--config.eval.batch_size=4']


def cli(*args, check=True):
  env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
  try:
    proc = subprocess.run([sys.executable, '-m', 'rnnlm_jax.experiment', *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
  except subprocess.TimeoutExpired as e:  # show where it stalled, not only the command
    stderr = e.stderr.decode(errors='replace') if isinstance(e.stderr, bytes) else e.stderr
    raise AssertionError(f'timed out after 600 s: {args}\n{(stderr or "")[-3000:]}') from None
  if check and proc.returncode != 0:
    raise AssertionError(f'exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}')
  return proc


def test_train_eval_generate_resume_on_ptb(tmp_path, ptb_dir):
  common = ['--config', ZAREMBA, '--workdir', str(tmp_path),
            f'--config.data.path={ptb_dir}', *TINY]
  first = cli('train', *common, '--config.train.num_steps=10')
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['steps'] == 10 and results['vocab_size'] == 10000
  assert 0 < results['test_ppl'] < 10000
  assert 'starting a new run' in first.stderr

  scores = json.loads(cli('eval', *common, '--split=valid').stdout)
  assert scores['step'] == 10 and abs(scores['ppl'] - results['valid_ppl']) < 1e-2 * scores['ppl']

  sample = cli('generate', *common, '--prompt=the company', '--length=7').stdout
  assert sample.strip().startswith('the company') and len(sample.split()) == 9

  second = cli('train', *common, '--config.train.num_steps=15')
  assert 'resumed from step 10' in second.stderr
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [l['step'] for l in lines if l['split'] == 'train'] == [5, 10, 15]
  assert json.loads((tmp_path / 'results.json').read_text())['steps'] == 15


@pytest.mark.parametrize('args,message', [
    (['--config.train.lerning_rate=1'], 'lerning_rate'),
    (['--config.train.batch_size=-1'], 'train.batch_size=-1'),
    (['--config.model.cell=lsmt'], "model.cell='lsmt'"),
    (['--config.model.dropout=1.5'], 'model.dropout'),
    (['--config.data.source=nope'], "data.source='nope'"),
    (['--config.train.batch_size=10'], 'not divisible by the 4 devices'),
])
def test_bad_config_is_a_one_line_error(tmp_path, args, message):
  proc = cli('train', '--config', ZAREMBA, '--workdir', str(tmp_path), *args,
             check=False)
  assert proc.returncode != 0
  assert message in proc.stderr, proc.stderr[-2000:]


def test_missing_data_file_is_named(tmp_path):
  proc = cli('train', '--config', ZAREMBA, '--workdir', str(tmp_path / 'w'),
             f'--config.data.path={tmp_path / "nowhere"}', check=False)
  assert proc.returncode == 2
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error:') and 'nowhere' in last


QUICKSTART = str(REPO_ROOT / 'experiments' / 'quickstart' / 'config.py')


@pytest.mark.parametrize('arg,message', [
    ('--config.train.batch_sise=3', 'train.batch_sise in --config.train.batch_sise=3; '
     'did you mean train.batch_size?'),
    ('--config.trian.seq_len=3', 'did you mean train.seq_len?'),
    ('--noconfig.train.progres_bar', 'did you mean train.progress_bar?'),
    ('--config.train.batch_size=abc', 'flag --config.train.batch_size=abc'),
])
def test_bad_override_is_one_line_with_a_suggestion(arg, message):
  proc = cli('train', '--config', QUICKSTART, arg, check=False)
  assert proc.returncode == 2
  assert proc.stderr.startswith('error: ') and proc.stderr.count('\n') == 1, proc.stderr
  assert message in proc.stderr


def test_missing_config_file_and_help():
  proc = cli('train', '--config', 'experiments/nope/config.py', check=False)
  assert (proc.returncode, proc.stderr) == (
      2, 'error: --config experiments/nope/config.py: no such file\n')
  assert cli('--help').stdout.startswith('Command line: train')
