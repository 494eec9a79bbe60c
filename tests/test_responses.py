"""Instructions in a prompt template, answered by a tiny LM of the 'lm' task."""

import jax.numpy as jnp
import numpy as np
import pytest

from rnnlm_jax import configs, data, lm_decoding, responses
from rnnlm_jax.training import tasks

from test_seq2seq import random_params

TEMPLATE = '### Instruction:\n{instruction}\n### Response:\n'
WORDS = data.Vocabulary(['<unk>', '<eos>', '###', 'Instruction:', 'Response:',
                         'add', 'two', 'numbers', 'def', 'f', '{x}'])


def tiny_lm(vocab_size: int):
  """The 'lm' task's model of a tiny config, random params."""
  config = configs.base_config()
  config.model.num_layers, config.model.hidden_size = 1, 8
  config.model.embed_size, config.model.unroll = 6, 1
  model = tasks.get(config).make_model(config, tasks._Vocab(  # pylint: disable=protected-access
      data.Vocabulary(['<unk>', '<eos>'] + [f'w{i}' for i in range(vocab_size - 2)])))
  tokens = jnp.zeros((1, 3), jnp.int32)
  return model, random_params(model, tokens, model.initial_carry(1), scale=1.0)


def test_the_template_is_filled_by_replace_not_format():
  assert responses.render_prompt('Q: {instruction} {x}\nA:', 'f({a})') == \
      'Q: f({a}) {x}\nA:'
  with pytest.raises(ValueError, match='has no {instruction}'):
    responses.render_prompt('Q: {query}', 'f')


def test_word_and_char_encoding_round_trips():
  text = '### Instruction:\nadd two numbers\n### Response:\n'
  ids = responses.encode(text, WORDS, 'word')
  assert WORDS.decode(ids) == ['###', 'Instruction:', '<eos>', 'add', 'two',
                               'numbers', '<eos>', '###', 'Response:', '<eos>']
  assert responses.decode(ids, WORDS, 'word') == text
  assert responses.decode(responses.encode('add two', WORDS, 'word'), WORDS,
                          'word') == 'add two'  # no '\n', no final <eos>
  chars = data.Vocabulary.build('def f(x):\n  return x\n', specials=('<unk>',))
  code = 'def f(x):\n  return x\n'
  assert responses.decode(responses.encode(code, chars, 'char'), chars, 'char') == code
  with pytest.raises(ValueError, match="level='bpe'"):
    responses.encode(code, chars, 'bpe')


@pytest.mark.parametrize('method', ['greedy', 'beam'])
def test_respond_text_is_the_decoded_response_of_the_rendered_prompt(method):
  model, params = tiny_lm(len(WORDS))
  text = responses.respond_text(model, params, WORDS, 'word', 'add two numbers',
                                TEMPLATE, method, max_len=8, beam_size=3)
  prompt = responses.encode(TEMPLATE.replace('{instruction}', 'add two numbers'),
                            WORDS, 'word')
  (ids,) = lm_decoding.respond(model, params, [prompt], method=method, max_len=8,
                               eos_id=WORDS.eos_id, beam_size=3)
  assert WORDS.eos_id not in ids.tolist()
  assert text == responses.decode(ids, WORDS, 'word')
  lowered = responses.respond_text(model, params, WORDS, 'word', 'ADD Two numbers',
                                   TEMPLATE, method, max_len=8, beam_size=3,
                                   lowercase=True)
  assert lowered == responses.respond_text(
      model, params, WORDS, 'word', 'add two numbers', TEMPLATE.lower(), method,
      max_len=8, beam_size=3)

def test_a_vocabulary_without_eos_needs_an_eos_id():
  chars = data.Vocabulary(['<unk>'] + list('abc\n#:'))
  model, params = tiny_lm(len(chars))
  with pytest.raises(ValueError, match="no '<eos>'"):
    responses.respond_text(model, params, chars, 'char', 'abc', TEMPLATE,
                           max_len=4)
  text = responses.respond_text(model, params, chars, 'char', 'abc', TEMPLATE,
                                max_len=4, eos_id=chars.id_of('\n'))
  assert '\n' not in text and len(text) <= 4
