"""scripts/benchmark.py runs (tiny mode), and the train step compiles once."""

import json
import pathlib

import jax
import numpy as np
import pytest

from rnnlm_jax import configs, data, models
from rnnlm_jax.training import scoring
from rnnlm_jax.training import optim, parallel, steps
from rnnlm_jax.training.steps import train_step

from conftest import count_compiles, load_script

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_benchmark():
  return load_script(REPO_ROOT / 'scripts' / 'benchmark.py', 'benchmark_script')


def test_tiny_benchmark_writes_positive_numbers(tmp_path):
  benchmark = _load_benchmark()
  out = tmp_path / 'bench.json'
  lines = []
  result = benchmark.main(['--tiny', '--out', str(out)], log=lines.append)
  assert json.loads(out.read_text()) == json.loads(json.dumps(result))
  rows = result['results']
  jax_rows = [r for r in rows if r['framework'] == 'jax']
  assert len(jax_rows) == 1 and jax_rows[0]['shape'] == 'tiny'
  for row in rows:
    assert row['ms_per_step'] > 0 and row['tokens_per_s'] > 0
    assert len(row['ms_per_step_rounds']) == row['rounds'] >= 1
    assert np.isfinite(row['loss']) and row['loss'] > 0
  assert jax_rows[0]['compile_s'] > 0 and jax_rows[0]['unroll'] >= 1
  torch_rows = [r for r in rows if r['framework'] == 'torch']
  if result['torch_found']:
    assert len(torch_rows) == 1 and torch_rows[0]['tokens_per_s'] > 0
    assert jax_rows[0]['ratio'] > 0
  else:
    assert not torch_rows and jax_rows[0]['ratio'] is None
    assert any('torch was not found' in line for line in lines)
  assert result['machine']['jax'] == jax.__version__
  assert any(line.startswith('shape') for line in lines)  # the table header


def _tiny_jax_rows(*flags):
  """The JAX rows of a --tiny --no-torch run with `flags`."""
  result = _load_benchmark().main(['--tiny', '--no-torch', *flags],
                                  log=lambda _: None)
  return [r for r in result['results'] if r['framework'] == 'jax']


def test_tiny_benchmark_compares_the_two_recurrent_backwards():
  jax_rows = _tiny_jax_rows('--backward', 'autodiff,after_loop')
  assert [r['backward'] for r in jax_rows] == ['autodiff', 'after_loop']
  assert all(r['ms_per_step'] > 0 for r in jax_rows)
  # Same gradients, so the same loss after the same steps.
  np.testing.assert_allclose(jax_rows[0]['loss'], jax_rows[1]['loss'], rtol=1e-4)


def test_tiny_benchmark_times_each_listed_cell():
  """--cells with a list gives one full-step row per cell."""
  jax_rows = _tiny_jax_rows('--cells', 'lstm,gru')
  assert [r['cell'] for r in jax_rows] == ['lstm', 'gru']
  assert all(r['ms_per_step'] > 0 for r in jax_rows)


def test_benchmark_rejects_unknown_shape():
  benchmark = _load_benchmark()
  with pytest.raises(SystemExit):
    benchmark.parse_args(['--shapes', 'huge'])
  with pytest.raises(SystemExit):
    benchmark.parse_args(['--backward', 'fast'])


VOCAB, BATCH, SEQ = 29, 8, 7  # shapes no other test compiles


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_train_step_compiles_once(dtype):
  """Carried state, a reset carry and new batches never trigger a recompile."""
  mesh = parallel.make_mesh()
  c = configs.base_config()
  c.model.num_layers, c.model.hidden_size, c.model.embed_size = 2, 12, 12
  c.model.dtype = dtype
  model = models.make_model(c.model, VOCAB)
  tx, _ = optim.make_optimizer(c.train, 100, 1000)
  state = steps.create_train_state(model, tx, 0, BATCH, SEQ,
                                       parallel.replicated(mesh))
  sharding = parallel.batch_sharded(mesh, BATCH)
  carry = scoring.initial_carry(model, BATCH, sharding)
  stream = np.random.default_rng(0).integers(0, VOCAB, 2000).astype(np.int32)
  windows = data.bptt_windows(stream, BATCH, SEQ)
  sizes = []
  with count_compiles('train_step') as compiles:
    for i in range(8):
      if i == 5:  # an epoch boundary: the loop resets the state
        carry = scoring.initial_carry(model, BATCH, sharding)
      batch = parallel.to_global(next(windows), sharding, BATCH)
      # Steps 1.. get the carry the previous step returned (truncated BPTT).
      state, carry, metrics = train_step(
          state, batch, carry, loss_normalization=c.train.loss_normalization)
      sizes.append(len(compiles))
  assert np.isfinite(float(metrics['loss']))
  assert int(state.step) == 8
  assert sizes == [1] * len(sizes), (
      f'train_step compilations after each step: {sizes}: it recompiled')
