"""The text around lm_decoding: an instruction in a prompt template, encoded,
answered by the LM, and the response decoded back to text.

Text <-> ids goes through the run's vocabulary and either a tokenizer (an
object with tokenize(str) -> pieces and detokenize(pieces) -> str, e.g.
data.tokenizers.SentencePieceTokenizer) or a data level:
  'char': every character a token, newlines included;
  'word': whitespace-separated words, '<eos>' for each '\\n' (as the corpus
    reader does; a prompt that does not end in '\\n' gets no final '<eos>').
"""

from typing import Any

import numpy as np

from rnnlm_jax import data, lm_decoding

PLACEHOLDER = '{instruction}'


def render_prompt(template: str, instruction: str) -> str:
  """The template with '{instruction}' replaced by the instruction (a plain
  replace, not str.format: code in an instruction may hold braces)."""
  if PLACEHOLDER not in template:
    raise ValueError(f'data.instruct.template={template!r} has no {PLACEHOLDER}')
  return template.replace(PLACEHOLDER, instruction)


def encode(text: str, vocab: data.Vocabulary, tokenizer_or_level: Any) -> np.ndarray:
  """Token ids int32 [N] of `text` (see the module docstring)."""
  if isinstance(tokenizer_or_level, str):
    if tokenizer_or_level not in data.LEVELS:
      raise ValueError(f'level={tokenizer_or_level!r} is not one of {data.LEVELS}')
    if tokenizer_or_level == 'char':
      return vocab.encode(text)
    tokens = []
    for k, line in enumerate(text.split('\n')):
      if k:
        tokens.append(data.EOS)
      tokens.extend(line.split())
    return vocab.encode(tokens)
  return vocab.encode(tokenizer_or_level.tokenize(text))


def decode(ids, vocab: data.Vocabulary, tokenizer_or_level: Any) -> str:
  """Text of the ids (the inverse of `encode` up to word-level spacing)."""
  tokens = vocab.decode(np.asarray(ids, np.int64))
  if isinstance(tokenizer_or_level, str):
    return data.detokenize(tokens, tokenizer_or_level)
  return tokenizer_or_level.detokenize(tokens)


def respond_text(model, params, vocab: data.Vocabulary, tokenizer_or_level: Any,
                 instruction: str, template: str, method: str = 'greedy', *,
                 max_len: int, eos_id: int | None = None,
                 lowercase: bool = False, **options) -> str:
  """The model's response to `instruction` rendered in `template`, as text
  (without the eos). eos_id: the end of a response (default: the
  vocabulary's '<eos>'); lowercase: the prompt (a model trained on
  lower-cased text); options: lm_decoding.respond's (beam_size,
  length_penalty, top_p, temperature, seed)."""
  if eos_id is None:
    if vocab.eos_id is None:
      raise ValueError("the vocabulary has no '<eos>': pass the eos_id that ends "
                       'a response')
    eos_id = vocab.eos_id
  text = render_prompt(template, instruction)
  prompt = encode(text.lower() if lowercase else text, vocab, tokenizer_or_level)
  if not len(prompt):
    raise ValueError(f'the prompt of {instruction!r} encodes to no tokens')
  (ids,) = lm_decoding.respond(model, params, [prompt], method=method,
                               max_len=max_len, eos_id=eos_id, batch_size=1,
                               **options)
  return decode(ids, vocab, tokenizer_or_level)
