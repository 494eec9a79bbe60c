"""The 'tfds' source, with a tiny dataset prepared offline as array_record.

This runs without TensorFlow: tfds writes array_record files and reads them
back through tfds.data_source.
"""

import pytest

from rnnlm_jax import configs
from rnnlm_jax.data import DataError, load_corpus

TRAIN = ['the cat sat\non the mat', 'a dog\n']
VALID = ['the dog sat']
TEST = ['a cat']


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  # skip_registration: the loader must find it from the prepared files alone,
  # as it would in a fresh process.
  class RnnlmJaxTinyText(tfds.core.GeneratorBasedBuilder,
                         skip_registration=True):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self,
          features=tfds.features.FeaturesDict({'text': tfds.features.Text()}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {'train': self._generate_examples(TRAIN),
              'validation': self._generate_examples(VALID),
              'test': self._generate_examples(TEST)}

    def _generate_examples(self, texts):
      for i, text in enumerate(texts):
        yield i, {'text': text}

  path = tmp_path_factory.mktemp('tfds')
  RnnlmJaxTinyText(data_dir=str(path),
                   file_format='array_record').download_and_prepare()
  return path


def tfds_config(data_dir, **overrides):
  data = configs.base_config().data
  data.source, data.level = 'tfds', 'word'
  data.tfds.name, data.tfds.data_dir = 'rnnlm_jax_tiny_text', str(data_dir)
  for key, value in overrides.items():  # tfds_x -> data.tfds.x
    if key.startswith('tfds_'):
      data.tfds[key.removeprefix('tfds_')] = value
    else:
      data[key] = value
  return data


def test_loads_word_level(data_dir):
  corpus = load_corpus(tfds_config(data_dir))
  assert corpus.name == 'tfds:rnnlm_jax_tiny_text'
  # Each example's lines end in <eos>; example order is tfds' (shuffled by
  # key hash), so compare as a multiset of sentences.
  train = ' '.join(corpus.vocab.decode(corpus.train)).split(' <eos>')
  assert sorted(s.strip() for s in train if s.strip()) == [
      'a dog', 'on the mat', 'the cat sat']
  assert corpus.vocab.decode(corpus.valid) == ['the', 'dog', 'sat', '<eos>']
  assert corpus.vocab.decode(corpus.test) == ['a', 'cat', '<eos>']


def test_loads_char_level(data_dir):
  corpus = load_corpus(tfds_config(data_dir, level='char'))
  assert ''.join(corpus.vocab.decode(corpus.test)) == 'a cat\n'
  assert len(corpus.train) == len('the cat sat\non the mat\na dog\n')


@pytest.mark.parametrize('key, value, fragment', [
    ('tfds_name', 'no_such_dataset_xyz', 'no_such_dataset_xyz'),
    ('tfds_name', '', 'data.tfds.name'),
    ('tfds_splits', ('train', 'dev', 'test'), "'dev'"),
    ('tfds_splits', ('train', 'test'), 'data.tfds.splits'),
    ('tfds_text_key', 'body', 'data.tfds.text_key'),
])
def test_errors(data_dir, key, value, fragment):
  with pytest.raises(DataError) as info:
    load_corpus(tfds_config(data_dir, **{key: value}))
  assert fragment in str(info.value) and '\n' not in str(info.value)
