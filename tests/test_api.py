"""The Python API agrees with the command line and with results.json."""

import os

import numpy as np
import pytest

import rnnlm_jax
from rnnlm_jax.training import inference
from tests.test_train_loop import tiny_config


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp('api_data')
  rng = np.random.default_rng(0)
  words = 's1 s2 s3 s4 s5 s6'.split()
  for split, n in (('train', 300), ('valid', 30), ('test', 30)):
    lines = [' '.join(rng.choice(words, rng.integers(3, 8))) for _ in range(n)]
    (root / f'ptb.{split}.txt').write_text('\n'.join(lines) + '\n')
  workdir = str(tmp_path_factory.mktemp('api_run'))
  config = tiny_config(num_steps=30)
  config.data.source, config.data.path = 'files', str(root)
  config.eval.test_batch_size = 1
  return config, workdir, rnnlm_jax.train(config, workdir)


def test_score_of_the_test_split_is_results_test_loss(trained):
  config, workdir, results = trained
  run = rnnlm_jax.load(workdir)
  text = open(os.path.join(config.data.path, 'ptb.test.txt')).read()
  scores = run.score(text)
  assert scores['tokens'] == results['test_tokens']
  assert scores['loss'] == pytest.approx(results['test_loss'], rel=1e-5)
  assert len(scores['log_probs']) == scores['tokens']


def test_generate_equals_the_cli_sample(trained):
  config, workdir, _ = trained
  config.generate.prompt, config.generate.seed = 's1 s2', 3
  config.generate.length = 10
  via_cli_code = inference.generate(config, workdir)
  via_api = rnnlm_jax.load(workdir).generate('s1 s2', length=10, seed=3)
  assert via_api == via_cli_code


def test_a_run_saved_from_four_devices_loads_and_samples_on_one(trained):
  _, workdir, _ = trained  # trained on the 4 fake devices of conftest
  import subprocess, sys  # pylint: disable=import-outside-toplevel,multiple-imports
  code = ('import jax, rnnlm_jax; assert jax.device_count() == 1; '
          f'print(rnnlm_jax.load({workdir!r}).generate("s1", length=5, seed=0))')
  env = dict(os.environ, XLA_FLAGS='', JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                       text=True, check=True)
  assert out.stdout.startswith('s1 ')


def test_misuse_is_one_line(trained, tmp_path):
  _, workdir, _ = trained
  run = rnnlm_jax.load(workdir)
  with pytest.raises(ValueError, match="translate needs a task='seq2seq' run"):
    run.translate(['a b'])
  with pytest.raises(ValueError, match="respond needs a task='instruct' run"):
    run.respond('a b')
  with pytest.raises(ValueError, match='holds no run'):
    rnnlm_jax.load(str(tmp_path))
  with pytest.raises(ValueError, match="checkpoint='newest': must be one of \\('best', 'latest', 'average'\\)"):
    rnnlm_jax.load(workdir, checkpoint='newest')


@pytest.fixture(scope='module')
def seq2seq_run(reverse_run):
  return rnnlm_jax.load(reverse_run[1])


@pytest.mark.parametrize('text', ['a b c d e', 'h', 'g a z'])  # z: unknown
def test_attention_is_the_greedy_translation_and_its_weights(seq2seq_run, text):
  att = seq2seq_run.attention(text)
  assert att.source_tokens == [
      t if t in 'abcdefgh' else '<unk>' for t in text.split()] + ['<eos>']
  assert att.target_tokens[-1] == '<eos>'
  assert att.weights.shape == (len(att.target_tokens), len(att.source_tokens))
  np.testing.assert_allclose(att.weights.sum(axis=1), 1.0, rtol=1e-5)
  assert (att.weights >= 0).all()
  assert att.translation == seq2seq_run.translate([text], beam=1)[0]
  assert ' '.join(att.target_tokens[:-1]) == att.translation


def test_attention_png(seq2seq_run, tmp_path):
  path = seq2seq_run.attention('a b c').save_png(str(tmp_path / 'a.png'))
  assert open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_attention_misuse_is_one_line(trained, seq2seq_run):
  import dataclasses  # pylint: disable=import-outside-toplevel
  _, workdir, _ = trained
  with pytest.raises(ValueError, match="attention needs a task='seq2seq' run"):
    rnnlm_jax.load(workdir).attention('s1 s2')
  with pytest.raises(ValueError, match='one sentence'):
    seq2seq_run.attention(['a b'])
  config = seq2seq_run.config.copy_and_resolve_references()
  config.model.seq2seq.attention = 'none'
  with pytest.raises(ValueError, match="attention='none'"):
    dataclasses.replace(seq2seq_run, config=config).attention('a b')
