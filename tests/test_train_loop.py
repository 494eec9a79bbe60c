"""The training loop end to end, in process, on a small synthetic corpus."""

import functools
import json
import os

import jax
import numpy as np
import pytest

from rnnlm_jax import checkpoint, configs, metrics
from rnnlm_jax.training import inference, run_files, steps, trainer

from conftest import count_compiles


def tiny_config(num_steps=60, dropout=0.0):
  c = configs.base_config()
  c.data.source = 'synthetic'
  c.data.level = 'word'
  c.data.synthetic.vocab_size = 12
  c.data.synthetic.order = 1
  c.data.synthetic.tokens = (2000, 400, 400)
  c.model.num_layers, c.model.hidden_size, c.model.embed_size = 1, 16, 8
  c.model.dropout = c.model.dropout_output = dropout
  c.model.unroll = 1  # compiles faster; unroll is tested in the model tests
  c.train.batch_size, c.train.seq_len = 4, 8
  c.train.num_steps = num_steps
  c.train.optimizer, c.train.learning_rate = 'adam', 1e-2
  c.train.schedule = 'constant'
  c.train.log_every_steps = 10
  c.train.eval_every_steps = 20
  c.train.progress_bar = False
  c.eval.batch_size, c.eval.test_batch_size = 4, 1
  c.generate.length = 12
  return c


def test_train_writes_run_files_and_compiles_once(tmp_path):
  config = tiny_config(num_steps=130)  # 62 windows per epoch: crosses 2 epochs
  with count_compiles('train_step') as compiles:
    results = trainer.train_and_evaluate(config, str(tmp_path))
  assert len(compiles) == 1
  for name in ('config.json', 'vocab.json', 'metrics.jsonl', 'results.json',
               'samples.txt', 'checkpoints', 'best'):
    assert (tmp_path / name).exists(), name
  assert results['steps'] == 130
  # The model learns the chain: valid ppl well under uniform (12), near oracle.
  assert results['valid_ppl'] < 0.8 * 12
  assert results['test_ppl'] >= 0.95 * results['test_oracle_ppl']
  lines = metrics.read_jsonl(str(tmp_path / 'metrics.jsonl'))
  assert [l['step'] for l in lines if l['split'] == 'train'] == list(range(10, 131, 10))
  for line in lines:
    if line['split'] == 'train':  # throughput per device, for scaling efficiency
      assert line['tokens_per_s_per_device'] == pytest.approx(line['tokens_per_s'] / 4)
  assert results['tokens_per_s_per_device_this_invocation'] > 0
  assert results['tokens_trained_this_invocation'] == 130 * 4 * 8
  assert sorted(os.listdir(tmp_path / 'checkpoints'))  # latest kept
  assert len((tmp_path / 'samples.txt').read_text().split()) > 5


def _final_params(workdir, config):
  _, state, _ = inference.load_trained(config, workdir, 'latest')
  return jax.device_get(state.params), int(state.step)


def test_resumed_run_is_the_same_run(tmp_path):
  straight, broken = str(tmp_path / 'straight'), str(tmp_path / 'broken')
  trainer.train_and_evaluate(tiny_config(60, dropout=0.2), straight)
  first = trainer.train_and_evaluate(tiny_config(30, dropout=0.2), broken)  # stops at 30
  second = trainer.train_and_evaluate(tiny_config(60, dropout=0.2), broken)  # resumes
  # The run's clock goes on from the checkpoint: both invocations counted.
  assert second['train_seconds'] > second['train_seconds_this_invocation']
  assert second['train_seconds'] > first['train_seconds'] > 0
  a, step_a = _final_params(straight, tiny_config(60))
  b, step_b = _final_params(broken, tiny_config(60))
  assert step_a == step_b == 60
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  losses = lambda d: [l['loss'] for l in metrics.read_jsonl(os.path.join(d, 'metrics.jsonl'))
                      if l['split'] == 'train']
  assert losses(straight) == losses(broken)


def test_second_invocation_of_a_finished_run_changes_nothing(tmp_path):
  config = tiny_config(20)
  first = trainer.train_and_evaluate(config, str(tmp_path))
  mtime = (tmp_path / 'results.json').stat().st_mtime_ns
  assert trainer.train_and_evaluate(config, str(tmp_path)) == first
  assert (tmp_path / 'results.json').stat().st_mtime_ns == mtime


def test_resume_with_a_different_model_names_the_key(tmp_path):
  trainer.train_and_evaluate(tiny_config(10), str(tmp_path))
  changed = tiny_config(10)
  changed.model.hidden_size = 32
  with pytest.raises(run_files.RunMismatchError, match='model.hidden_size: 16 -> 32'):
    trainer.train_and_evaluate(changed, str(tmp_path))
  # How the same model is computed may change (same params, same gradients).
  same_model = tiny_config(20)
  same_model.model.unroll, same_model.model.recurrent_backward = 2, 'autodiff'
  assert trainer.train_and_evaluate(same_model, str(tmp_path))['steps'] == 20
  # --fresh moves the old run aside rather than deleting it.
  trainer.train_and_evaluate(changed, str(tmp_path), fresh=True)
  assert [p for p in os.listdir(tmp_path.parent) if p.startswith(tmp_path.name + '.old-')]


def test_generate_and_eval_from_the_workdir(tmp_path):
  config = tiny_config(20)
  trainer.train_and_evaluate(config, str(tmp_path))
  text = inference.generate(config, str(tmp_path))
  assert len(text.split()) == config.generate.length
  config.generate.temperature = 0.0
  assert inference.generate(config, str(tmp_path)) == inference.generate(config, str(tmp_path))
  scores = inference.evaluate_checkpoint(config, str(tmp_path), 'valid')
  saved = json.loads((tmp_path / 'results.json').read_text())
  np.testing.assert_allclose(scores['ppl'], saved['valid_ppl'], rtol=1e-4)


def test_a_start_that_failed_before_any_checkpoint_does_not_pin_the_config(tmp_path):
  broken = tiny_config(10)
  broken.eval.test_batch_size = 100_000  # the test split cannot fill one window
  with pytest.raises(Exception, match='eval.test_batch_size'):
    trainer.train_and_evaluate(broken, str(tmp_path))
  fixed = tiny_config(10)
  fixed.train.batch_size = 8  # a resume key: refused only once a run has started
  assert trainer.train_and_evaluate(fixed, str(tmp_path))['steps'] == 10


def test_keys_added_to_the_codebase_later_do_not_block_resume(tmp_path):
  trainer.train_and_evaluate(tiny_config(10), str(tmp_path))
  saved = json.loads((tmp_path / 'config.json').read_text())
  del saved['model']['forget_bias']  # as if written before the key existed
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  assert trainer.train_and_evaluate(tiny_config(12), str(tmp_path))['steps'] == 12
  changed = tiny_config(14)
  changed.model.forget_bias = 1.0
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  with pytest.raises(run_files.RunMismatchError, match='model.forget_bias: 0.0 -> 1.0'):
    trainer.train_and_evaluate(changed, str(tmp_path))


def test_a_run_resumed_from_a_checkpoint_without_its_clock_reports_no_total(
    tmp_path, monkeypatch):
  real_save = checkpoint.Checkpointer.save

  def save_as_older_code(self, step, state, carry, meta, which='latest'):
    meta = {k: v for k, v in meta.items() if k != 'train_seconds'}
    return real_save(self, step, state, carry, meta, which)

  monkeypatch.setattr(checkpoint.Checkpointer, 'save', save_as_older_code)
  trainer.train_and_evaluate(tiny_config(10), str(tmp_path))
  monkeypatch.undo()
  resumed = trainer.train_and_evaluate(tiny_config(12), str(tmp_path))
  assert resumed['steps'] == 12 and 'train_seconds' not in resumed


def test_resume_on_changed_data_names_the_vocabulary_difference(tmp_path):
  corpus = tmp_path / 'corpus'
  corpus.mkdir()
  for split in ('train', 'valid', 'test'):
    (corpus / f'x.{split}.txt').write_text('a b c d\n' * 200)
  config = tiny_config(5)
  config.data.source, config.data.path = 'files', str(corpus)
  run_dir = str(tmp_path / 'run')
  trainer.train_and_evaluate(config, run_dir)
  (corpus / 'x.train.txt').write_text('a b c e\n' * 200)  # 'd' became 'e'
  config.train.num_steps = 10
  with pytest.raises(run_files.RunMismatchError, match=r"vocabulary differs .*'d'.*'e'|vocabulary differs"):
    trainer.train_and_evaluate(config, run_dir)


def test_checkpoint_average_is_the_mean_of_the_kept_checkpoints(tmp_path):
  config = tiny_config(60)
  config.train.keep_checkpoints = 3  # saved at 20, 40, 60 (each evaluation)
  trainer.train_and_evaluate(config, str(tmp_path))
  model, latest, _ = inference.load_trained(config, str(tmp_path), 'latest')
  checkpointer = checkpoint.Checkpointer(str(tmp_path), 3)
  kept = list(checkpointer.restore_all(steps.checkpointable(latest),
                                       model.initial_carry(config.train.batch_size)))
  checkpointer.close()
  assert [r.step for r in kept] == [60, 40, 20]
  _, averaged, _ = inference.load_trained(config, str(tmp_path), 'average')
  assert int(averaged.step) == 60
  for path, leaf in jax.tree_util.tree_leaves_with_path(averaged.params):
    parts = [np.asarray(functools.reduce(lambda t, k: t[k.key], path, r.state['params']))
             for r in kept]
    np.testing.assert_allclose(leaf, np.mean(parts, axis=0), rtol=1e-6, atol=1e-7)
  scores = {which: inference.evaluate_checkpoint(config, str(tmp_path), 'valid', which)
            for which in ('latest', 'average')}
  assert scores['average']['ppl'] != scores['latest']['ppl']
  assert scores['average']['checkpoint'] == 'average'
