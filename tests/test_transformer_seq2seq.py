"""The Transformer encoder-decoder: the decoder cache, source masking,
decoding, config errors, and a reverse task through the training driver."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlm_jax
from rnnlm_jax import config_checks, decoding, models
from rnnlm_jax.models.transformer_seq2seq import TransformerSeq2Seq
from rnnlm_jax.training import inference, trainer, translation

from conftest import REPO_ROOT as REPO_ROOT_PATH, load_script
from test_seq2seq import random_params
from test_translation_task import _write_reverse_task, reverse_config
from test_translation_task import translate_on_the_command_line

V_SRC, V_TGT = 11, 13
BOS, EOS = 1, 2
LENGTHS = (5, 2, 4)  # ragged, none as long as the padded batch (7)


def tiny(**overrides) -> TransformerSeq2Seq:
  fields = dict(source_vocab_size=V_SRC, target_vocab_size=V_TGT, num_layers=2,
                d_model=16, num_heads=4, mlp_dim=24, max_len=10,
                dropout_embed=0.0, dropout=0.0, attention_dropout=0.0)
  fields.update(overrides)
  return TransformerSeq2Seq(**fields)


def batch(seed=0, lengths=LENGTHS, width=7, target_len=4, pad_id=0):
  """Source ids (real tokens first, then pad_id), mask, decoder inputs."""
  rng = np.random.default_rng(seed)
  source = np.full((len(lengths), width), pad_id, np.int32)
  for b, n in enumerate(lengths):
    source[b, :n] = rng.integers(3, V_SRC, n)
  mask = (np.arange(width)[None, :] < np.array(lengths)[:, None]).astype(np.float32)
  inputs = rng.integers(1, V_TGT, (len(lengths), target_len)).astype(np.int32)
  return jnp.asarray(source), jnp.asarray(mask), jnp.asarray(inputs)


def params_of(model, seed=0, scale=0.5):
  """Random params, uniform(-scale, scale)."""
  source, mask, inputs = batch(lengths=(2, 1), width=3, target_len=2)
  return random_params(model, (source, mask, inputs), (), seed=seed, scale=scale)


@functools.partial(jax.jit, static_argnames='model')
def teacher_and_steps(model, params, source, mask, inputs):
  """Teacher-forced (logits, weights) and the same from decode_step, token
  by token from encode's state: [B, T, V], [B, T, S] each."""
  variables = {'params': params}
  teacher = model.apply(variables, source, mask, inputs,
                        method=model.logits_and_attention)
  memory = model.apply(variables, source, mask, method=model.encode)

  def step(state, token):
    logits, state, weights = model.apply(variables, memory, state, token,
                                         method=model.decode_step)
    return state, (logits, weights)

  state, steps = jax.lax.scan(step, memory.state, inputs.T)
  return teacher, tuple(jnp.swapaxes(x, 0, 1) for x in steps), state


def check_cache(teacher, steps, state, mask):
  """Step-by-step decoding gives the teacher-forced logits and weights."""
  (logits, weights), (step_logits, step_weights) = teacher, steps
  length = logits.shape[1]
  assert logits.shape == (3, length, V_TGT) and logits.dtype == jnp.float32
  assert float(jnp.std(logits)) > 0.5  # not a near-uniform model
  np.testing.assert_allclose(step_logits, logits, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(step_weights, weights, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  pad = np.broadcast_to(np.asarray(mask)[:, None, :] == 0, weights.shape)
  assert not np.asarray(weights)[pad].any()  # padding gets no attention
  np.testing.assert_array_equal(state.position, [length] * 3)


def test_teacher_forced_logits_equal_step_by_step_decoding():
  model = tiny()
  source, mask, inputs = batch()
  teacher, steps, state = teacher_and_steps(model, params_of(model), source,
                                            mask, inputs)
  check_cache(teacher, steps, state, mask)


# The other options (sinusoidal positions, tied output), shared by two tests.
OTHER = dict(position='sinusoidal', tie_embeddings=True)


def test_source_padding_changes_no_output():
  model = tiny(**OTHER)  # its cache is checked here too
  params = params_of(model)
  source, mask, inputs = batch()
  other, _, _ = batch(pad_id=7)  # same real tokens, pad positions hold 7
  assert (other != source).any()
  a, a_steps, state = teacher_and_steps(model, params, source, mask, inputs)
  b, b_steps, _ = teacher_and_steps(model, params, other, mask, inputs)
  check_cache(a, a_steps, state, mask)
  for x, y in zip(a + a_steps, b + b_steps):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
  g = decoding.greedy(model, params, source, mask, 8, BOS, EOS)
  h = decoding.greedy(model, params, other, mask, 8, BOS, EOS)
  np.testing.assert_array_equal(g.tokens, h.tokens)


def test_beam_of_one_is_greedy_and_scores_match():
  model = tiny(**OTHER)
  # Varied outputs, some ended by eos, some at max_len (the assert below).
  params = params_of(model, seed=2, scale=1.0)
  params['output_bias'] = params['output_bias'].at[EOS].add(4.0)
  source, mask, _ = batch()
  greedy = decoding.greedy(model, params, source, mask, 8, BOS, EOS, 0.6)
  beam = decoding.beam_search(model, params, source, mask, 1, 8, BOS, EOS, 0.6)
  lengths = np.asarray(greedy.length)
  assert lengths.min() < 8 and lengths.max() == 8, lengths  # both endings
  np.testing.assert_array_equal(beam.tokens, greedy.tokens)
  np.testing.assert_array_equal(beam.length, greedy.length)
  np.testing.assert_allclose(beam.log_prob, greedy.log_prob, rtol=1e-5)
  # The decoders' log-probs are the teacher-forced ones of their output.
  scored = decoding.score(model, params, source, mask, greedy.tokens, BOS, EOS, 0.6)
  np.testing.assert_allclose(scored.log_prob, greedy.log_prob, rtol=1e-4)


def test_lengths_past_max_len_are_one_line_errors():
  model = tiny(max_len=6)
  params = params_of(model)
  source, mask, inputs = batch()  # source width 7
  with pytest.raises(ValueError, match=r'max_len=6 is too small for a source batch of 7'):
    model.apply({'params': params}, source, mask, inputs[:, :3],
                method=model.logits_and_attention)
  with pytest.raises(ValueError, match=r'max_len=7 decoding steps exceed .* 6 positions'):
    decoding.greedy(model, params, source[:, :5], mask[:, :5], 7, BOS, EOS)


def transformer_config(data_dir, num_steps=60, num_layers=2):
  """The reverse task of test_translation_task with a small Transformer."""
  c = reverse_config(data_dir, num_steps=num_steps)
  c.model.type = 'transformer_seq2seq'
  c.model.num_layers = num_layers
  c.model.dropout_embed = c.model.dropout = 0.0
  t = c.model.transformer
  t.d_model, t.num_heads, t.mlp_dim, t.max_len = 32, 4, 64, 16
  t.attention_dropout = 0.0
  c.train.learning_rate = 3e-3
  c.train.eval_every_steps = 0  # at the end of each epoch
  c.eval.translate.beam_size = 2
  return c


def train(tmp_path_factory, num_steps, sizes, num_layers):
  data_dir = tmp_path_factory.mktemp('tf_reverse_data')
  _write_reverse_task(data_dir, sizes=sizes)
  workdir = str(tmp_path_factory.mktemp('tf_reverse_run'))
  config = transformer_config(data_dir, num_steps, num_layers)
  return config, workdir, trainer.train_and_evaluate(config, workdir)


@pytest.fixture(scope='module')
def short_run(tmp_path_factory):
  return train(tmp_path_factory, 60, (640, 16, 16), num_layers=1)  # compiles faster


@pytest.mark.slow  # ~45 s of compiles; the model's parts are tested above
def test_training_reduces_loss_and_the_seq2seq_outputs_work(short_run):
  config, workdir, results = short_run
  # An untrained model is near uniform: loss ln(V) (8 words + 4 specials).
  assert results['valid_loss'] < np.log(12) - 0.4, results
  for key in ('test_greedy_bleu', 'test_beam_bleu_lowercase', 'test_beam_chrf',
              'test_greedy_exact_match'):
    assert key in results
  assert os.path.exists(os.path.join(workdir, 'attention_test0.png'))
  assert os.path.exists(os.path.join(workdir, 'translations.test.beam.txt'))
  translations = inference.translate(config, workdir, ['a b c', 'h g'], beam=2)
  assert len(translations) == 2 and all(isinstance(t, str) for t in translations)
  run = rnnlm_jax.load(workdir)
  att = run.attention('a b c d')
  assert att.source_tokens == ['a', 'b', 'c', 'd', '<eos>']
  assert att.weights.shape == (len(att.target_tokens), 5)
  np.testing.assert_allclose(att.weights.sum(axis=1), 1.0, rtol=1e-5)
  assert att.translation == run.translate(['a b c d'], beam=1)[0]


@pytest.mark.slow
def test_reverse_task_reaches_exact_match(tmp_path_factory):
  config, workdir, results = train(tmp_path_factory, 800, (4000, 64, 64), 2)
  assert results['test_greedy_exact_match'] >= 95.0, results
  assert results['test_beam_exact_match'] >= 95.0, results
  assert inference.translate(config, workdir, ['a b c', 'h g'], beam=1) == [
      'c b a', 'g h']
  assert rnnlm_jax.load(workdir).translate(['d e f'], beam=2) == ['f e d']
  assert translate_on_the_command_line(
      tmp_path_factory.mktemp('tf_config'), 'test_transformer_seq2seq',
      f'transformer_config({config.data.path!r}, 800)', workdir, 'd e f g',
      beam=2) == 'g f e d'


@pytest.mark.parametrize('key, value, message', [
    ('transformer.num_heads', 3, 'must divide model.transformer.d_model=32'),
    ('transformer.position', 'rotary', 'is not one of'),
    ('transformer.max_len', 0, 'must be a positive integer'),
    ('transformer.attention_dropout', 1.0, 'must be a dropout rate'),
    ('num_layers', 0, 'must be a positive integer'),
    ('dropout_kind', 'locked', "is only for model.type='rnn'"),
])
def test_bad_model_values_are_one_line_errors(tmp_path, key, value, message):
  config = transformer_config(tmp_path)
  section = config.model
  *parents, name = key.split('.')
  for parent in parents:
    section = section[parent]
  section[name] = value
  with pytest.raises(ValueError, match=message) as error:
    models.validate(config.model)
  assert '\n' not in str(error.value) and f'model.{key}=' in str(error.value)


def test_task_and_model_type_must_agree(tmp_path):
  config = transformer_config(tmp_path)
  config_checks.validate(config)
  models.validate(config.model)
  config.model.type = 'rnn'
  with pytest.raises(ValueError, match="task='seq2seq' needs an encoder-decoder"):
    config_checks.validate(config)
  config.model.type, config.task = 'transformer_seq2seq', 'lm'
  with pytest.raises(ValueError, match="an encoder-decoder needs task='seq2seq'"):
    config_checks.validate(config)


def test_decoding_length_is_checked_when_the_model_is_made(tmp_path):
  config = transformer_config(tmp_path)
  config.eval.translate.max_len = 17

  class Corpus:  # what make_model reads
    source_vocab = target_vocab = range(12)

  with pytest.raises(ValueError, match=r'eval.translate.max_len: max_len=17 .* 16 '):
    translation.make_model(config, Corpus())


def test_multi30k_transformer_is_the_gru_run_but_for_the_model():
  experiments = REPO_ROOT_PATH / 'experiments'
  tf = load_script(experiments / 'multi30k_transformer' / 'config.py',
                   'multi30k_transformer_config').get_config()
  gru = load_script(experiments / 'multi30k_gru_attention' / 'config.py',
                    'multi30k_gru_attention_config').get_config()
  config_checks.validate(tf)
  assert tf.task == gru.task and tf.seed == gru.seed
  assert tf.data.to_dict() == gru.data.to_dict()
  assert tf.eval.to_dict() == gru.eval.to_dict()
  different = {k for k in tf.train if tf.train[k] != gru.train[k]}
  assert different == {'learning_rate'} and tf.train.learning_rate == 5e-4
  fields = models.validate(tf.model)
  assert (fields['num_layers'], fields['d_model'], fields['num_heads'],
          fields['mlp_dim'], fields['dropout']) == (3, 256, 8, 512, 0.1)
  assert tf.eval.translate.max_len <= fields['max_len']


def test_bfloat16_matmuls_keep_float32_outputs():
  f32, bf16 = tiny(), tiny(dtype=jnp.bfloat16)
  params = params_of(f32)
  source, mask, inputs = batch()
  (a, a_weights), _, _ = teacher_and_steps(f32, params, source, mask, inputs)
  b, b_weights = jax.jit(functools.partial(
      bf16.apply, method=bf16.logits_and_attention))(
          {'params': params}, source, mask, inputs)
  assert b.dtype == b_weights.dtype == jnp.float32
  assert not np.array_equal(a, b)  # rounded operands
  np.testing.assert_allclose(b, a, atol=0.1 * float(jnp.std(a)))
  np.testing.assert_allclose(b_weights, a_weights, atol=0.05)
