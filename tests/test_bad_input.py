"""Bad data files and generate inputs: clear one-line errors or sensible output."""

import numpy as np
import pytest

from rnnlm_jax import data, sampling
from rnnlm_jax.training import inference, trainer
from test_train_loop import tiny_config


def _ptb_like(directory, train='a b c\n' * 50, valid='a b\n', test='b c\n'):
  directory.mkdir(parents=True, exist_ok=True)
  for name, text in (('train', train), ('valid', valid), ('test', test)):
    if isinstance(text, bytes):
      (directory / f'x.{name}.txt').write_bytes(text)
    elif text is not None:
      (directory / f'x.{name}.txt').write_text(text)
  return directory


def _files_config(path):
  config = tiny_config(4)
  config.data.source = 'files'
  config.data.path = str(path)
  return config


@pytest.mark.parametrize('case,expected', [
    ('missing_dir', 'does not exist'),
    ('missing_split', 'test'),
    ('empty', 'x.valid.txt'),
    ('binary', 'x.train.txt'),
    ('non_utf8', 'x.train.txt'),
    ('too_short', 'train'),
])
def test_bad_data_file_is_one_line_naming_it(tmp_path, case, expected):
  root = tmp_path / 'corpus'
  if case == 'missing_split':
    _ptb_like(root, test=None)
  elif case == 'empty':
    _ptb_like(root, valid='')
  elif case == 'binary':
    _ptb_like(root, train=b'\x00\x01\x02binary\x00' * 20)
  elif case == 'non_utf8':
    _ptb_like(root, train=b'caf\xe9 au lait\n' * 20)
  elif case == 'too_short':
    _ptb_like(root, train='a b\n')
  with pytest.raises(data.DataError) as info:
    trainer.open_stage(_files_config(root), str(tmp_path / 'run'))
  message = str(info.value)
  assert '\n' not in message and expected in message, message


def test_unknown_tfds_dataset_is_named(tmp_path):
  config = tiny_config(4)
  config.data.source = 'tfds'
  config.data.tfds.name = 'no_such_dataset_xyz'
  config.data.tfds.data_dir = str(tmp_path)
  with pytest.raises(data.DataError, match='no_such_dataset_xyz'):
    trainer.open_stage(config, str(tmp_path / 'run'))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('gen'))
  config = tiny_config(10)
  trainer.train_and_evaluate(config, workdir)
  return config, workdir


def test_generate_handles_empty_oov_and_greedy_prompts(trained, caplog):
  config, workdir = trained
  config = config.copy_and_resolve_references()
  config.generate.length = 6
  config.generate.prompt = ''
  assert len(inference.generate(config, workdir).split()) == 6  # starts a new line
  config.generate.prompt = 'zzz qqq'
  text = inference.generate(config, workdir)
  assert text.startswith('zzz qqq ') and len(text.split()) == 8
  assert 'out of vocabulary' in caplog.text
  config.generate.temperature = 0.0
  assert inference.generate(config, workdir) == inference.generate(config, workdir)


def test_prompt_ids_do_not_append_an_end_of_line():
  vocab = data.Vocabulary(['<unk>', '<eos>', 'the', 'cat'])
  np.testing.assert_array_equal(sampling.prompt_ids('the cat', vocab, 'word'), [2, 3])
  np.testing.assert_array_equal(sampling.prompt_ids('', vocab, 'word'), [1])
