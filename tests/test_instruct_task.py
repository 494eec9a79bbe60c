"""task='instruct': prompt-masked rows, response perplexity, a tiny run that
trains and resumes at char and code_bpe level, and train.init_from (params
and vocabulary from another run, refusals in one line)."""

import inspect
import json
import os

import jax
import numpy as np
import pytest

import rnnlm_jax
from rnnlm_jax import code_metrics, config_checks, configs, data, models
from rnnlm_jax.data import instruct as instruct_data
from rnnlm_jax.data.paired_sources import RawPairs
from rnnlm_jax.training import inference, instruct, optim, parallel, run_files
from rnnlm_jax.training import steps, trainer
from tests.test_cli import cli

TEMPLATE = 'I:{instruction}\nR:'


def _write_pairs(root, seed=0, sizes=(64, 8, 8)):
  """JSONL instruction files: a random word over 'abcdef' and its reverse."""
  rng = np.random.default_rng(seed)
  for split, n in zip(('train', 'valid', 'test'), sizes):
    lines = []
    for _ in range(n):
      word = ''.join(rng.choice(list('abcdef'), rng.integers(2, 6)))
      lines.append(json.dumps({'instruction': word, 'response': word[::-1]}))
    (root / f'{split}.jsonl').write_text('\n'.join(lines) + '\n')
  return root


def instruct_config(data_dir, level='char', num_steps=6):
  c = configs.base_config()
  c.task = 'instruct'
  c.data.path = str(data_dir)
  c.data.level = level
  c.data.spm_vocab_size = 300  # byte fallback alone needs 256 pieces
  c.data.paired.format = 'jsonl'
  c.data.paired.source_key, c.data.paired.target_key = 'instruction', 'response'
  c.data.instruct.template = TEMPLATE
  c.data.instruct.max_len = 32
  c.model.hidden_size = c.model.embed_size = 16
  c.model.num_layers = 1
  c.model.unroll = 1
  c.train.batch_size = 8
  c.train.num_steps = num_steps
  c.train.optimizer, c.train.learning_rate = 'adam', 1e-2
  c.train.schedule = 'constant'
  c.train.loss_normalization = 'token'
  c.train.eval_every_steps = c.train.log_every_steps = 3
  c.train.progress_bar = False
  c.eval.batch_size = c.eval.test_batch_size = 8
  c.generate.length = 8
  config_checks.validate(c)
  return c


@pytest.fixture(scope='module')
def pairs_dir(tmp_path_factory):
  return _write_pairs(tmp_path_factory.mktemp('instruct_data'))


@pytest.fixture(scope='module')
def char_run(pairs_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('instruct_char'))
  config = instruct_config(pairs_dir)
  return config, workdir, trainer.train_and_evaluate(config, workdir)


def _hand_codec():
  return instruct_data.build_codec('char', TEMPLATE, ['I:ab\nR:cd', 'xy'])


# --- rows, masks and the loss ------------------------------------------------

def test_row_and_mask_of_a_hand_made_pair():
  codec = _hand_codec()
  prompt = codec.prompt_ids('ab')
  row, cut = instruct_data.make_row(prompt, codec.encode('cd'), codec.eos_id, 0)
  eos = codec.eos_id
  expected = [eos] + list(codec.encode('I:ab\nR:')) + list(codec.encode('cd')) + [eos]
  assert not cut and row.tolist() == expected and len(prompt) == 8
  batch = instruct_data.pack([row], np.array([len(prompt)]), [0], 16, 2)
  n = len(row) - 1  # 10 model positions
  np.testing.assert_array_equal(batch.inputs[0, :n], row[:-1])
  np.testing.assert_array_equal(batch.targets[0, :n], row[1:])
  # Targets 7, 8, 9 are 'c', 'd', '<eos>': the response; the rest is masked.
  assert batch.mask[0].tolist() == [0.0] * 7 + [1.0] * 3 + [0.0] * 6
  assert codec.decode(batch.targets[0, 7:]) == 'cd'
  assert not batch.mask[1].any() and not batch.inputs[1].any()  # padding row


def test_max_len_cuts_the_response_and_drops_a_prompt_too_long():
  codec = _hand_codec()
  prompt = codec.prompt_ids('ab')  # 8 tokens
  row, cut = instruct_data.make_row(prompt, codec.encode('cdcd'), codec.eos_id, 9)
  assert cut and len(row) == 10 and codec.eos_id not in row[1:].tolist()
  row, cut = instruct_data.make_row(prompt, codec.encode('c'), codec.eos_id, 7)
  assert row is None and cut
  raw = RawPairs('hand', {s: ['ab', 'abab'] for s in data.SPLITS},
                 {s: ['cdcd', 'c'] for s in data.SPLITS}, 'x')
  encoded = instruct_data.encode_pairs(raw, codec, max_len=9)
  assert encoded.truncated['train'] == 1 and encoded.dropped['train'] == 1
  assert len(encoded.rows['train']) == 1


def _tiny_model(vocab_size):
  c = instruct_config('.')
  return c, models.make_model(c.model, vocab_size)


def _step(batch, vocab_size):
  """Loss and updated params of one SGD step from fixed initial params."""
  c, model = _tiny_model(vocab_size)
  c.train.optimizer, c.train.learning_rate, c.train.clip_norm = 'sgd', 1.0, 0.0
  tx, _ = optim.make_optimizer(c.train, 1, 1)
  state = steps.create_train_state(model, tx, 0, 2, 8)
  state, _, metrics = steps.train_step(
      state, batch, model.initial_carry(2), loss_normalization='token')
  return float(metrics['loss']), jax.tree.map(np.asarray, state.params)


def test_loss_and_gradients_ignore_the_prompt_targets():
  codec = _hand_codec()
  rows, lens = [], []
  for instruction, response in (('ab', 'cd'), ('ba', 'dcx')):
    prompt = codec.prompt_ids(instruction)
    rows.append(instruct_data.make_row(prompt, codec.encode(response),
                                       codec.eos_id, 0)[0])
    lens.append(len(prompt))
  batch = instruct_data.pack(rows, np.array(lens), [0, 1], 16, 2)
  V = len(codec.vocab)
  other_prompt = batch.targets.copy()
  other_prompt[:, :6] = (other_prompt[:, :6] + 1) % V  # only masked targets
  other_response = batch.targets.copy()
  other_response[0, 8] = (other_response[0, 8] + 1) % V  # a response target
  loss, params = _step(batch, V)
  loss_p, params_p = _step(batch._replace(targets=other_prompt), V)
  loss_r, params_r = _step(batch._replace(targets=other_response), V)
  assert loss_p == pytest.approx(loss, rel=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               params, params_p)
  assert abs(loss_r - loss) > 1e-5  # near-uniform at init: small but real
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), params, params_r)
  assert max(jax.tree.leaves(moved)) > 1e-5


def test_response_ppl_counts_only_response_tokens():
  codec = _hand_codec()
  responses = ['cd', 'dcx', 'c', 'ddd', 'x']
  raw = RawPairs('hand', {s: ['ab', 'ba', 'a', 'b', 'aab'] for s in data.SPLITS},
                 {s: responses for s in data.SPLITS}, 'x')
  dataset = instruct_data.encode_pairs(raw, codec, max_len=0)
  c, model = _tiny_model(len(codec.vocab))
  tx, _ = optim.make_optimizer(c.train, 1, 1)
  params = steps.create_train_state(model, tx, 0, 1, 8).params
  scores = instruct.score(params, model, dataset, 'test', 4, c,
                          parallel.make_mesh())
  assert scores['tokens'] == sum(len(r) + 1 for r in responses)
  total = 0.0
  for row, p in zip(*dataset.split('test')):
    logits, _ = model.apply({'params': params}, row[None, :-1],
                            model.initial_carry(1), train=False)
    logp = jax.nn.log_softmax(np.asarray(logits[0]))
    total -= sum(float(logp[j, row[j + 1]]) for j in range(p - 1, len(row) - 1))
  assert scores['loss'] == pytest.approx(total / scores['tokens'], rel=1e-5)


# --- runs ----------------------------------------------------------------------

def test_char_run_trains_and_resumes(char_run, pairs_dir):
  config, workdir, results = char_run
  assert results['steps'] == 6 and results['level'] == 'char'
  assert 'response:' in results['sample'] and 'init_from' not in results
  lines = [json.loads(l) for l in open(f'{workdir}/metrics.jsonl')]
  losses = [l['loss'] for l in lines if l['split'] == 'train']
  assert losses[-1] < losses[0]
  # The test tokens are the responses and their '<eos>', nothing else.
  test = [json.loads(l) for l in (pairs_dir / 'test.jsonl').read_text().splitlines()]
  assert results['test_tokens'] == sum(len(t['response']) + 1 for t in test)
  # The generate command answers config.generate.prompt as an instruction,
  # as the sample answered the first test instruction (same best params).
  asked = config.copy_and_resolve_references()
  asked.generate.prompt = test[0]['instruction']
  answer = inference.generate(asked, workdir)
  assert results['sample'].split('\n\n')[0].endswith(f'response: {answer}')
  longer = instruct_config(pairs_dir, num_steps=9)
  resumed = trainer.train_and_evaluate(longer, workdir)
  assert resumed['steps'] == 9
  steps_logged = [json.loads(l)['step'] for l in open(f'{workdir}/metrics.jsonl')
                  if json.loads(l)['split'] == 'train']
  assert steps_logged == [3, 6, 9]


def test_code_bpe_run_saves_its_tokenizer_and_round_trips(pairs_dir, tmp_path):
  config = instruct_config(pairs_dir, level='code_bpe', num_steps=3)
  results = trainer.train_and_evaluate(config, str(tmp_path))
  assert results['vocab_size'] > 256 and results['steps'] == 3
  assert (tmp_path / 'spm.model').is_file() and (tmp_path / 'vocab.json').is_file()
  codec = instruct.load_vocabs(config, str(tmp_path))
  # Characters the training rows never had come back through byte fallback.
  code = 'fed(cab):\n\treturn[::-1]#é\n'
  ids = codec.encode(code)
  assert codec.decode(ids) == code and codec.vocab.unk_id not in ids.tolist()


# --- train.init_from -----------------------------------------------------------

def _init_config(pairs_dir, source, **model):
  c = instruct_config(pairs_dir, num_steps=3)
  c.train.init_from = source
  for key, value in model.items():
    c.model[key] = value
  return c


def test_init_from_restores_the_best_params_and_the_vocabulary(char_run, pairs_dir,
                                                               tmp_path):
  source_config, source, _ = char_run
  config = _init_config(pairs_dir, source)
  stage = trainer.open_stage(config, str(tmp_path))
  stage.checkpointer.close()
  _, trained, _ = inference.load_trained(source_config, source, 'best')
  jax.tree.map(np.testing.assert_array_equal,
               jax.tree.map(np.asarray, trained.params),
               jax.tree.map(np.asarray, stage.state.params))
  assert stage.step == 0 and int(stage.state.step) == 0
  assert run_files.load_vocab(str(tmp_path)) == run_files.load_vocab(source)
  results = trainer.train_and_evaluate(config, str(tmp_path))
  assert results['init_from'] == source
  assert results['init_from_step'] == int(trained.step)


def _one_line_error(config, workdir, *needles):
  with pytest.raises(ValueError) as error:
    trainer.train_and_evaluate(config, workdir)
  message = str(error.value)
  assert '\n' not in message and all(n in message for n in needles), message
  return message


def test_init_from_refuses_a_shape_mismatch(char_run, pairs_dir, tmp_path):
  _, source, _ = char_run
  config = _init_config(pairs_dir, source, hidden_size=24)
  message = _one_line_error(config, str(tmp_path), source, str(tmp_path))
  # The LSTM's gates: 4 x hidden 16 there, 4 x 24 here.
  assert "parameter ['layer_0']" in message and '(64' in message and '(96' in message


def test_init_from_refuses_another_vocabulary(char_run, pairs_dir, tmp_path):
  _, source, _ = char_run
  config = _init_config(pairs_dir, source)
  config.data.level = 'code_bpe'
  _one_line_error(config, str(tmp_path / 'bpe'), source, "'char'", "'code_bpe'")
  # Resumed with init_from naming a run of another vocabulary.
  workdir = str(tmp_path / 'resumed')
  trainer.train_and_evaluate(_init_config(pairs_dir, source), workdir)
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'config.json').write_text((tmp_path / 'resumed' / 'config.json').read_text())
  data.Vocabulary(('<unk>', '<eos>', 'a', 'b')).save(other / 'vocab.json')
  _one_line_error(_init_config(pairs_dir, str(other)), workdir, str(other),
                  workdir, 'another vocabulary')


def test_lm_init_from_restores_params(pairs_dir, tmp_path):
  text = tmp_path / 'text.txt'
  text.write_text('the cat sat on the mat\n' * 200)
  c = configs.base_config()
  c.data.source, c.data.path, c.data.level = 'files', str(text), 'char'
  c.model.hidden_size = c.model.embed_size = 8
  c.model.num_layers = 1
  c.model.unroll = 1
  c.train.batch_size, c.train.seq_len, c.train.num_steps = 4, 8, 2
  c.train.progress_bar = False
  c.eval.batch_size = c.eval.test_batch_size = 4
  c.generate.length = 4
  trainer.train_and_evaluate(c, str(tmp_path / 'a'))
  b = c.copy_and_resolve_references()
  b.train.init_from = str(tmp_path / 'a')
  stage = trainer.open_stage(b, str(tmp_path / 'b'))
  stage.checkpointer.close()
  _, trained, _ = inference.load_trained(c, str(tmp_path / 'a'))
  jax.tree.map(np.testing.assert_array_equal,
               jax.tree.map(np.asarray, trained.params),
               jax.tree.map(np.asarray, stage.state.params))
  # A character LM's vocabulary has no '<eos>' to end a response with.
  _one_line_error(_init_config(pairs_dir, str(tmp_path / 'a')),
                  str(tmp_path / 'instruct'), str(tmp_path / 'a'), "'<eos>'")


@pytest.mark.parametrize('key,value,needle', [
    ('data.level', 'word', 'data.level'),
    ('data.instruct.template', 'no field', 'data.instruct.template'),
    ('data.instruct.max_len', 1, 'data.instruct.max_len'),
    ('model.type', 'seq2seq', 'model.type'),
])
def test_bad_instruct_config_is_one_line(pairs_dir, key, value, needle):
  c = instruct_config(pairs_dir)
  *parents, name = key.split('.')
  section = c
  for parent in parents:
    section = section[parent]
  section[name] = value
  with pytest.raises(ValueError, match=needle.replace('.', r'\.')):
    config_checks.validate(c)


def test_decoded_test_responses_are_scored_and_saved(char_run, pairs_dir):
  config, workdir, results = char_run
  test = [json.loads(l) for l in (pairs_dir / 'test.jsonl').read_text().splitlines()]
  assert results['test_greedy_count'] == len(test)
  assert results['test_reference_parse_rate'] == 100.0 * sum(
      code_metrics.parses(t['response']) for t in test) / len(test)
  saved = [json.loads(l) for l in open(f'{workdir}/responses_test_greedy.jsonl')]
  assert [s['reference'] for s in saved] == [t['response'] for t in test]
  matches = sum(s['response'] == s['reference'] for s in saved)
  assert results['test_greedy_exact_match'] == pytest.approx(100.0 * matches / len(test))
  # The saved response is what the generate command answers (best params).
  assert saved[0]['response'] == inference.respond(config, workdir,
                                                   saved[0]['instruction'])


def test_respond_agrees_across_the_api_inference_and_the_cli(char_run, pairs_dir,
                                                             tmp_path):
  config, workdir, _ = char_run
  run = rnnlm_jax.load(workdir)
  length = config.generate.length
  for beam, options in ((None, dict(method='greedy')),
                        (3, dict(method='beam', beam_size=3, length_penalty=
                                 config.eval.respond.length_penalty))):
    expected = run.respond('abc', max_len=length, **options)
    assert inference.respond(config, workdir, 'abc', beam=beam) == expected
  with pytest.raises(ValueError, match='exclude each other'):
    inference.respond(config, workdir, 'abc', beam=2, top_p=0.5)
  config_file = tmp_path / 'config.py'
  config_file.write_text(  # the fixture's config, standalone
      f'from rnnlm_jax import config_checks, configs\n\nTEMPLATE = {TEMPLATE!r}\n\n'
      + inspect.getsource(instruct_config) + '\n\ndef get_config():\n'
      f'  return instruct_config({str(pairs_dir)!r})\n')
  out = cli('generate', '--config', str(config_file), '--workdir', workdir,
            '--instruction=abc', '--top_p=0.9', '--seed=3', '--length=6').stdout
  assert out.rstrip('\n') == run.respond('abc', method='top_p', max_len=6,
                                         top_p=0.9, seed=3,
                                         temperature=config.generate.temperature)


def test_bits_per_char_counts_the_characters_of_the_responses(char_run, pairs_dir):
  config, workdir, results = char_run
  test = [json.loads(l) for l in (pairs_dir / 'test.jsonl').read_text().splitlines()]
  chars = sum(len(t['response']) + 1 for t in test)  # char level: one per token
  assert results['test_tokens'] == chars
  assert results['test_bits_per_char'] == pytest.approx(results['test_bits'])


@pytest.mark.slow
def test_code_instructions_sweep_smoke_runs_every_arm(tmp_path):
  from rnnlm_jax import sweep  # pylint: disable=import-outside-toplevel
  root = os.path.join(os.path.dirname(__file__), '..', 'experiments',
                      'code_instructions')
  result = sweep.run_sweep(root, smoke=True, workdir=str(tmp_path))
  arms = [r['arm'] for r in result.runs]
  assert arms == ['stdlib_code_lm', 'lstm_scratch', 'lstm_pretrained',
                  'gru_attention', 'transformer']
  by_arm = {r['arm']: r['results'] for r in result.runs}
  assert by_arm['lstm_pretrained']['init_from'].endswith(
      os.path.join('stdlib_code_lm', 'seed0'))
  for arm in arms[1:]:
    assert 0.0 <= by_arm[arm]['test_greedy_parse_rate'] <= 100.0
    assert by_arm[arm]['test_bits_per_char'] > 0
  table = open(result.results_md).read()
  assert 'test bits/char' in table and 'test parses %' in table
