"""Preemption safety: SIGKILL/SIGTERM at random points, damaged checkpoints."""

import json
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'scripts'))
import kill_resume  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='module')
def reference_run(tmp_path_factory):
  """The unbroken run every interrupted run must reproduce bit for bit."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  wall = kill_resume.run_to_completion(workdir)
  return workdir, wall


def test_sigkill_at_three_random_points_resumes_bit_identically(reference_run, tmp_path):
  reference, _ = reference_run
  # Each kill costs a process start; scripts/kill_resume.py takes --kills N.
  targets = kill_resume.kill_steps(random.Random(1), 3)
  seen = kill_resume.run_with_kills(str(tmp_path), targets)
  assert all(s < kill_resume.TOTAL_STEPS for s in seen), f'a kill missed the run: {seen}'
  assert kill_resume.differences(reference, str(tmp_path)) == []


def test_sigterm_saves_at_the_current_step_and_exits_cleanly(reference_run, tmp_path):
  reference, _ = reference_run
  proc = subprocess.Popen(kill_resume.command(str(tmp_path)), cwd=REPO_ROOT,
                          env=kill_resume._env(), stdout=subprocess.PIPE,  # pylint: disable=protected-access
                          stderr=subprocess.PIPE, text=True)
  metrics_file = tmp_path / 'metrics.jsonl'
  deadline = time.time() + 300
  while not (metrics_file.exists() and metrics_file.read_text().strip()):
    assert proc.poll() is None and time.time() < deadline, 'run ended before SIGTERM'
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
  last_line = stderr.strip().splitlines()[-1]
  assert last_line.startswith('preempted (SIGTERM) at step'), last_line
  step = int(last_line.split('at step ')[1].split(':')[0])
  assert 0 < step < kill_resume.TOTAL_STEPS and kill_resume.latest_step(str(tmp_path)) == step
  kill_resume.run_to_completion(str(tmp_path))
  assert kill_resume.differences(reference, str(tmp_path)) == []


def _damage(step_dir: pathlib.Path, how: str) -> None:
  files = sorted(p for p in (step_dir / 'state').rglob('*') if p.is_file()
                 and p.stat().st_size > 64 and 'metadata' not in p.name)
  assert files, f'nothing to damage under {step_dir}'
  for path in files:
    data = path.read_bytes()
    if how == 'truncate':
      path.write_bytes(data[: len(data) // 3])
    else:
      path.write_bytes(bytes(b ^ 0x5A for b in data))


@pytest.mark.parametrize('how', ['truncate', 'garble'])
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(reference_run,
                                                                  tmp_path, how, caplog):
  from rnnlm_jax import checkpoint  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import inference, trainer  # pylint: disable=import-outside-toplevel
  import ml_collections  # pylint: disable=import-outside-toplevel
  workdir = tmp_path / 'run'
  subprocess.run(['cp', '-r', reference_run[0], str(workdir)], check=True)
  steps = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())
  assert len(steps) >= 2, steps
  _damage(workdir / 'checkpoints' / str(steps[-1]), how)
  config = ml_collections.ConfigDict(json.loads((workdir / 'config.json').read_text()))
  _, state, _ = inference.load_trained(config, str(workdir), 'latest')
  assert int(state.step) == steps[-2]
  assert f'skipping unreadable latest checkpoint at step {steps[-1]}' in caplog.text
  assert (workdir / 'checkpoints' / str(steps[-1])).exists()  # nothing deleted
  assert checkpoint  # imported for the warning's logger


def test_no_readable_checkpoint_refuses_to_start_over(reference_run, tmp_path):
  # Every checkpoint damaged (or, alike, written for a different model): the
  # rerun must not quietly train from step 0 and rotate them out.
  workdir = tmp_path / 'run'
  subprocess.run(['cp', '-r', reference_run[0], str(workdir)], check=True)
  step_dirs = [p for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit()]
  for step_dir in step_dirs:
    _damage(step_dir, 'garble')
  before = sorted(p.name for p in (workdir / 'checkpoints').iterdir())
  proc = subprocess.run(kill_resume.command(str(workdir)), cwd=REPO_ROOT,
                        env=kill_resume._env(), capture_output=True, text=True,  # pylint: disable=protected-access
                        timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  last_line = proc.stderr.strip().splitlines()[-1]
  assert last_line.startswith('error: none of the checkpoints in'), last_line
  assert '--fresh' in last_line
  assert sorted(p.name for p in (workdir / 'checkpoints').iterdir()) == before
