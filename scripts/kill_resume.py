"""Kill a training run with SIGKILL at random moments, resume it, compare.

  python scripts/kill_resume.py --kills 20 --workdir /tmp/kill_resume

Trains a small synthetic-corpus run once without interruption, then again
while killing it `--kills` times at random steps, as the checkpoint for that
step is being written (checkpoints come every 2 steps), re-running the same
command after each kill and once more to finish. Passes when the final params,
optimizer state and logged metrics are bit-identical to the unbroken run.
The default test suite runs the same check with 3 kills
(tests/test_reliability.py).
"""

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import rnnlm_jax
TOTAL_STEPS = 80
SYNTHETIC_ARGS = [
    '--config', str(REPO / 'experiments' / 'quickstart' / 'config.py'),
    '--config.data.source=synthetic', '--config.data.level=word',
    '--config.data.synthetic.vocab_size=16', '--config.data.synthetic.order=1',
    '--config.data.synthetic.tokens=(4000, 400, 400)',
    '--config.data.max_train_tokens=0', '--config.data.max_eval_tokens=0',
    '--config.data.vocab_min_count=1',
    '--config.model.hidden_size=16', '--config.model.embed_size=8',
    '--config.model.dropout=0.1', '--config.model.unroll=1',
    '--config.train.batch_size=4', '--config.train.seq_len=8',
    f'--config.train.num_steps={TOTAL_STEPS}', '--config.train.warmup_steps=5',
    '--config.train.log_every_steps=4', '--config.train.eval_every_steps=20',
    '--config.train.checkpoint_every_steps=2', '--config.train.progress_bar=false',
    '--config.eval.batch_size=4', '--config.generate.length=5',
]
# Values that depend on wall-clock time, not on the computation.
TIMING_KEYS = ('tokens_per_s', 'steps_per_s', 'tokens_per_s_per_device')


def command(workdir: str) -> list[str]:
  return [sys.executable, '-m', 'rnnlm_jax.experiment', 'train',
          *SYNTHETIC_ARGS, f'--workdir={workdir}']


def _env() -> dict:
  return dict(os.environ, PYTHONPATH=str(REPO))


def run_to_completion(workdir: str, timeout: float = 600) -> float:
  """Runs the command until it exits 0; returns its wall time."""
  start = time.perf_counter()
  proc = subprocess.run(command(workdir), cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=timeout)
  if proc.returncode != 0:
    raise RuntimeError(f'exit {proc.returncode}: {proc.stderr[-3000:]}')
  return time.perf_counter() - start


def run_with_kills(workdir: str, kill_at_steps: list[int],
                   timeout: float = 600) -> list[int]:
  """Starts the command and SIGKILLs it once a checkpoint for (at least) each
  target step starts to appear, restarting after each kill; then finishes it.

  Killing on progress rather than on a timer makes every kill land mid-run
  however loaded the machine is; polling every few ms catches Orbax while it
  is still writing (its temporary directories count as appearing).
  Returns the latest finished checkpoint step seen after each kill.
  """
  seen = []
  for target in kill_at_steps:
    proc = subprocess.Popen(command(workdir), cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while proc.poll() is None and _newest_step_dir(workdir) < target:
      if time.time() > deadline:
        proc.kill()
        raise TimeoutError(f'no checkpoint for step {target} within {timeout}s')
      time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seen.append(latest_step(workdir))
  run_to_completion(workdir)
  return seen


def _newest_step_dir(workdir: str) -> int:
  """Largest step with a checkpoint directory, finished or still being written."""
  path = pathlib.Path(workdir) / 'checkpoints'
  if not path.exists():
    return -1
  steps = [int(p.name.split('.')[0]) for p in path.iterdir()
           if p.name.split('.')[0].isdigit()]
  return max(steps, default=-1)


def latest_step(workdir: str) -> int:
  path = pathlib.Path(workdir) / 'checkpoints'
  steps = [int(p.name) for p in path.glob('*') if p.name.isdigit()] if path.exists() else []
  return max(steps, default=0)


def deterministic_metrics(workdir: str) -> list[dict]:
  lines = (pathlib.Path(workdir) / 'metrics.jsonl').read_text().splitlines()
  records = [json.loads(line) for line in lines]
  return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def final_state(workdir: str):
  """(params, opt_state, step) of the latest checkpoint, as numpy."""
  import jax  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import inference, trainer  # pylint: disable=import-outside-toplevel
  config = json.loads((pathlib.Path(workdir) / 'config.json').read_text())
  import ml_collections  # pylint: disable=import-outside-toplevel
  config = ml_collections.ConfigDict(config)
  _, state, _ = inference.load_trained(config, workdir, 'latest')
  return jax.device_get((state.params, state.opt_state, state.step))


def differences(reference: str, resumed: str) -> list[str]:
  """Human-readable differences between two finished runs (empty: identical)."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  problems = []
  a, b = final_state(reference), final_state(resumed)
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  if len(leaves_a) != len(leaves_b):
    problems.append('state structure differs')
  for i, (x, y) in enumerate(zip(leaves_a, leaves_b)):
    if not np.array_equal(np.asarray(x), np.asarray(y)):
      problems.append(f'state leaf {i} differs')
  if deterministic_metrics(reference) != deterministic_metrics(resumed):
    problems.append('metrics.jsonl differs')
  results = [json.loads((pathlib.Path(d) / 'results.json').read_text())
             for d in (reference, resumed)]
  for key in ('valid_loss', 'test_loss', 'steps'):
    if results[0][key] != results[1][key]:
      problems.append(f'results.json {key}: {results[0][key]} vs {results[1][key]}')
  return problems


def kill_steps(rng, kills: int, total_steps: int = TOTAL_STEPS) -> list[int]:
  """Random steps (checkpoints come every 2) at which to kill, increasing."""
  return sorted(rng.randrange(2, total_steps - 1) for _ in range(kills))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--kills', type=int, default=20)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workdir', default='/tmp/rnnlm_jax_kill_resume')
  args = parser.parse_args()
  import random  # pylint: disable=import-outside-toplevel
  reference = os.path.join(args.workdir, 'reference')
  resumed = os.path.join(args.workdir, 'resumed')
  for d in (reference, resumed):
    subprocess.run(['rm', '-rf', d], check=True)
  wall = run_to_completion(reference)
  rng = random.Random(args.seed)
  targets = kill_steps(rng, args.kills)
  seen = run_with_kills(resumed, targets)
  print(f'reference run: {wall:.1f}s; killed as checkpoints for steps {targets} '
        f'appeared; latest finished checkpoint after each kill: {seen}')
  problems = differences(reference, resumed)
  print('identical to the unbroken run' if not problems else '\n'.join(problems))
  return 1 if problems else 0


if __name__ == '__main__':
  sys.exit(main())
