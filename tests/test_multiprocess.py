"""Two JAX processes (2 CPU devices each) train like one process with 4 devices.

The two processes run the real command line (`rnnlm_jax.experiment train`)
through a thin driver that, after training, dumps every local device's copy of
the parameters. They find each other through a localhost coordinator
(RNNLM_JAX_COORDINATOR, ...) and all-reduce over gloo. The reference is the
same config trained in this (4-device) pytest process with the same global
batch. A hung collective ends in a timeout and a failure, never a hung CI.
"""

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import REPO_ROOT
from rnnlm_jax import metrics
from rnnlm_jax.training import inference, parallel, trainer

TIMEOUT_S = 240  # generous: the CPU cores are shared; a normal run takes ~40 s

CONFIG = '''
from rnnlm_jax import configs

def get_config():
  c = configs.base_config()
  c.data.source, c.data.level = 'synthetic', 'word'
  c.data.synthetic.vocab_size, c.data.synthetic.order = 12, 1
  c.data.synthetic.tokens = (2000, 200, 200)
  c.model.num_layers, c.model.hidden_size, c.model.embed_size = 1, 16, 8
  c.model.dropout = c.model.dropout_output = 0.2  # dropout keys must agree too
  c.model.unroll = 1
  c.train.batch_size, c.train.seq_len = 8, 8  # global batch: 2 rows per device
  c.train.num_steps = 6
  c.train.optimizer, c.train.learning_rate = 'adam', 1e-2
  c.train.schedule = 'constant'
  c.train.log_every_steps = 2
  c.train.eval_every_steps = 3  # checkpoints (collective saves) at 3 and 6
  c.train.progress_bar = False
  c.eval.batch_size, c.eval.test_batch_size = 4, 1  # 1: the replicated path
  c.generate.length = 6
  return c
'''

# Runs the command line unchanged, plus a dump of each process's parameters
# (every local device's copy) when trainer.fit returns.
DRIVER = '''
import os, sys
import jax
import numpy as np
from rnnlm_jax import experiment
from rnnlm_jax.training import parallel, trainer

_to_global = parallel.to_global
seen = set()  # (global batch, rows this process loaded)

def to_global(tree, sharding, global_batch):
  seen.add((global_batch, len(jax.tree.leaves(tree)[0])))
  return _to_global(tree, sharding, global_batch)

_fit = trainer.fit

def fit(run, writer):
  run = _fit(run, writer)
  copies = {}
  for i, leaf in enumerate(jax.tree.leaves(run.state.params)):
    for shard in leaf.addressable_shards:
      copies[f'{i}/{shard.device.id}'] = np.asarray(shard.data)
  copies['rows'] = np.asarray(parallel.process_rows(run.config.train.batch_size,
                                                    run.batch_sharding))
  copies['seen'] = np.asarray(sorted(seen))
  np.savez(os.path.join(os.environ['DUMP_DIR'], f'params_{jax.process_index()}.npz'),
           **copies)
  return run

parallel.to_global = to_global
trainer.fit = fit
sys.argv[0] = 'rnnlm_jax.experiment'
experiment.run()
'''


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _launch(num_processes, devices_per_process, args, tmp_path):
  port = _free_port()
  driver = tmp_path / 'driver.py'
  driver.write_text(DRIVER)
  procs = []
  for i in range(num_processes):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS='cpu',
               XLA_FLAGS=f'--xla_force_host_platform_device_count={devices_per_process}'
               ' --xla_cpu_collective_call_terminate_timeout_seconds=600'
               ' --xla_cpu_collective_timeout_seconds=600',
               RNNLM_JAX_COORDINATOR=f'localhost:{port}',
               RNNLM_JAX_NUM_PROCESSES=str(num_processes),
               RNNLM_JAX_PROCESS_ID=str(i), RNNLM_JAX_INIT_TIMEOUT='120',
               RNNLM_JAX_TRACEBACK='1', DUMP_DIR=str(tmp_path))
    log = open(tmp_path / f'process_{i}.log', 'w')  # pylint: disable=consider-using-with
    procs.append((subprocess.Popen(
        [sys.executable, str(driver), *args], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True), log))
  return procs


def _wait(procs, tmp_path):
  """stdout of each process; kills all at the deadline or when one fails."""
  deadline = time.monotonic() + TIMEOUT_S
  outputs = [None] * len(procs)
  try:
    while any(out is None for out in outputs):
      for i, (proc, _) in enumerate(procs):
        if outputs[i] is None and proc.poll() is not None:
          outputs[i] = proc.stdout.read()
          if proc.returncode != 0:
            raise AssertionError(f'process {i} exited {proc.returncode}:\n'
                                 + _log_tails(tmp_path, len(procs)))
      if time.monotonic() > deadline:
        raise AssertionError(f'timed out after {TIMEOUT_S} s (a hung collective?):\n'
                             + _log_tails(tmp_path, len(procs)))
      time.sleep(0.2)
  finally:
    for proc, log in procs:
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
      proc.stdout.close()
      log.close()
  return outputs


def _log_tails(tmp_path, n):
  return '\n'.join(f'--- process {i}:\n'
                   + (tmp_path / f'process_{i}.log').read_text()[-3000:]
                   for i in range(n))


def _results(stdout: str) -> dict:
  """The results JSON the train command prints (gloo prints lines before it)."""
  text = stdout.split('--- sample ---')[0]
  return json.loads(text[text.index('\n{') + 1 if not text.startswith('{') else 0:])


@pytest.fixture(scope='module')
def two_process_run(tmp_path_factory):
  """Starts 2 processes x 2 devices and, meanwhile, the 1 x 4 reference here."""
  tmp_path = tmp_path_factory.mktemp('multiprocess')
  config_file = tmp_path / 'config.py'
  config_file.write_text(CONFIG)
  workdir = tmp_path / 'two'
  procs = _launch(2, 2, ['train', '--config', str(config_file),
                         '--workdir', str(workdir)], tmp_path)
  try:
    config = runpy.run_path(str(config_file))['get_config']()
    captured = {}
    original = trainer.fit

    def fit(run, writer):
      run = original(run, writer)
      captured['params'] = jax.device_get(run.state.params)
      captured['rows'] = parallel.process_rows(run.config.train.batch_size,
                                               run.batch_sharding)
      return run

    trainer.fit = fit
    try:
      reference = trainer.train_and_evaluate(config, str(tmp_path / 'one'))
    finally:
      trainer.fit = original
  except BaseException:
    _wait_quietly(procs)
    raise
  outputs = _wait(procs, tmp_path)
  return dict(tmp_path=tmp_path, workdir=workdir, config=config,
              outputs=outputs, reference=reference, reference_params=captured)


def _wait_quietly(procs):
  for proc, log in procs:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
    log.close()


def _dumped(tmp_path, process, what='params'):
  with np.load(tmp_path / f'params_{process}.npz') as f:
    if what == 'params':
      return {k: f[k] for k in f.files if '/' in k}
    return f[what]


def test_each_process_loads_only_its_rows(two_process_run):
  tmp_path = two_process_run['tmp_path']
  assert tuple(_dumped(tmp_path, 0, 'rows')) == (0, 4)
  assert tuple(_dumped(tmp_path, 1, 'rows')) == (4, 8)
  for process in (0, 1):
    seen = {tuple(x) for x in _dumped(tmp_path, process, 'seen')}
    assert seen == {(8, 4), (4, 2)}, seen  # train batch 8, valid batch 4: halves


def test_two_processes_hold_the_one_process_params(two_process_run):
  r = two_process_run
  assert jax.device_count() == 4
  reference = jax.tree.leaves(r['reference_params']['params'])
  assert r['reference_params']['rows'] == (0, 8)
  dumps = [_dumped(r['tmp_path'], p) for p in (0, 1)]
  # Each process holds the replicated params on its 2 devices, and no others.
  device_ids = [{k.split('/')[1] for k in d} for d in dumps]
  assert all(len(ids) == 2 for ids in device_ids) and not device_ids[0] & device_ids[1]
  worst = 0.0
  for d in dumps:
    for key, value in d.items():
      leaf = reference[int(key.split('/')[0])]
      np.testing.assert_allclose(value, leaf, rtol=1e-5, atol=1e-6)
      worst = max(worst, float(np.max(np.abs(value - leaf))))
  # The 4 copies (2 processes x 2 devices) are bit-identical.
  first = dumps[0]
  for d in dumps:
    for key in first:
      same = [k for k in d if k.split('/')[0] == key.split('/')[0]]
      for k in same:
        np.testing.assert_array_equal(d[k], first[key])
  print(f'max |2-process - 1-process| over params: {worst:.3g}')


def test_collective_checkpoint_and_results(two_process_run):
  r = two_process_run
  workdir, config = r['workdir'], r['config']
  results = [_results(out) for out in r['outputs']]
  for result in results:
    assert result['steps'] == 6 and result['devices'] == 4
    for key in ('valid_loss', 'test_loss'):  # test: batch 1, replicated input
      np.testing.assert_allclose(result[key], r['reference'][key], rtol=1e-5)
  assert results[0]['valid_loss'] == results[1]['valid_loss']
  # The checkpoint both processes saved together restores to the params they held.
  _, state, _ = inference.load_trained(config, str(workdir), 'latest')
  assert int(state.step) == 6
  dumped = _dumped(r['tmp_path'], 0)
  for i, leaf in enumerate(jax.tree.leaves(jax.device_get(state.params))):
    copy = next(v for k, v in dumped.items() if k.split('/')[0] == str(i))
    np.testing.assert_array_equal(leaf, copy)
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['3', '6']


def test_only_process_zero_writes(two_process_run):
  workdir = two_process_run['workdir']
  lines = metrics.read_jsonl(str(workdir / 'metrics.jsonl'))
  keys = [(l['step'], l['split']) for l in lines]
  assert len(keys) == len(set(keys)), keys  # one writer, not two
  assert [s for s, split in keys if split == 'train'] == [2, 4, 6]
  assert (workdir / 'samples.txt').read_text().count('--- step') == 1
  assert len(os.listdir(workdir / 'tensorboard')) == 1
  assert json.loads((workdir / 'config.json').read_text())['train']['batch_size'] == 8
  logs = [(two_process_run['tmp_path'] / f'process_{i}.log').read_text() for i in (0, 1)]
  assert 'process 0 of 2; 2 local / 4 global devices' in logs[0]
  assert 'process 1 of 2; 2 local / 4 global devices' in logs[1]
