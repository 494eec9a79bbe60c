"""The TPU VM scripts: valid bash, and launch.sh starts a distributed run.

gcloud is replaced by a stub on PATH that prints its arguments, so the
commands the scripts would run are checked without a cloud account.
"""

import os
import subprocess

import pytest

from conftest import REPO_ROOT

TPU_VM = REPO_ROOT / 'scripts' / 'tpu_vm'
SCRIPTS = ('create.sh', 'setup.sh', 'launch.sh', 'tail.sh', 'copy_results.sh',
           'delete.sh')


@pytest.mark.parametrize('name', SCRIPTS + ('common.sh',))
def test_bash_syntax(name):
  path = TPU_VM / name
  assert path.exists(), path
  proc = subprocess.run(['bash', '-n', str(path)], capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr
  if name != 'common.sh':
    assert os.access(path, os.X_OK), f'{name} is not executable'


def _with_fake_gcloud(tmp_path, script, *args, **env):
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir(exist_ok=True)
  gcloud = bin_dir / 'gcloud'
  gcloud.write_text('#!/usr/bin/env bash\nprintf "gcloud"; printf " %q" "$@"; echo\n'
                    'for a; do case $a in --command=*) '
                    'printf "%s\\n" "${a#--command=}" >> "$REMOTE_COMMANDS";; esac; done\n')
  gcloud.chmod(0o755)
  full_env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
                  TPU_NAME='t1', ZONE='us-central2-b', ACCELERATOR_TYPE='v4-16',
                  PROJECT='p1', BUCKET='gs://b1',
                  REMOTE_COMMANDS=str(tmp_path / 'remote_commands'))
  full_env.update(env)
  return subprocess.run(['bash', str(TPU_VM / script), *args], env=full_env,
                        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)


def test_launch_runs_distributed_training_on_all_workers(tmp_path):
  proc = _with_fake_gcloud(tmp_path, 'launch.sh', 'experiments/zaremba_small/config.py',
                           '--config.train.num_epochs=1', RUN='zs1')
  assert proc.returncode == 0, proc.stderr
  ssh = [l for l in proc.stdout.splitlines() if ' ssh ' in l]
  assert len(ssh) == 1, proc.stdout
  line = ssh[0]
  for part in ('tpu-vm ssh t1', '--zone=us-central2-b', '--project=p1',
               '--worker=all', 'RNNLM_JAX_DISTRIBUTED=1', 'nohup',
               'python -m rnnlm_jax.experiment train',
               'experiments/zaremba_small/config.py', 'gs://b1/runs/zs1',
               'num_epochs=1', 'rnnlm_jax_zs1.log'):
    assert part in line.replace('\\ ', ' '), (part, line)
  remote = (tmp_path / 'remote_commands').read_text()  # what each worker runs
  assert remote.count('RNNLM_JAX_DISTRIBUTED=1 nohup python') == 1
  check = subprocess.run(['bash', '-n'], input=remote, capture_output=True, text=True)
  assert check.returncode == 0, (remote, check.stderr)


def test_launch_refuses_a_local_workdir(tmp_path):
  proc = _with_fake_gcloud(tmp_path, 'launch.sh', 'experiments/zaremba_small/config.py',
                           BUCKET='/tmp/x')
  assert proc.returncode == 2 and 'BUCKET=gs://' in proc.stderr


def test_create_passes_zone_type_and_version(tmp_path):
  proc = _with_fake_gcloud(tmp_path, 'create.sh', '--spot', TPU_VERSION='v2-alpha-tpuv5-lite')
  assert proc.returncode == 0, proc.stderr
  create = proc.stdout.splitlines()[0]
  for part in ('tpu-vm create t1', '--zone=us-central2-b', '--accelerator-type=v4-16',
               '--version=v2-alpha-tpuv5-lite', '--spot'):
    assert part in create, (part, create)
