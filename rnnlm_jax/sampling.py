"""Sampling text from a trained recurrent LM: temperature, top-k, top-p.

The prompt is read in one call of the model (the scan runs over it), then
`length` tokens are drawn inside a `lax.scan`, one model step each, all under
one jit: no Python loop over time.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from rnnlm_jax import data


def filter_logits(logits: jax.Array, top_k: int, top_p: float) -> jax.Array:
  """Masks logits [..., V] outside the top-k and the top-p nucleus with -inf.

  top_k <= 0 and top_p >= 1 disable their filter. The most likely token always
  survives, so at least one is left.
  """
  if top_k > 0:
    kth_largest = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][..., -1:]
    logits = jnp.where(logits < kth_largest, -jnp.inf, logits)
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    # Probability mass strictly before each sorted token; keep a token while
    # the mass before it is < top_p, and always the likeliest one (whose mass
    # before is 0, which is not < top_p for top_p <= 0).
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    keep = (mass_before < top_p) | (jnp.arange(logits.shape[-1]) == 0)
    cutoff = jnp.min(jnp.where(keep, sorted_logits, jnp.inf),
                     axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return logits


def choose(key: jax.Array, logits: jax.Array, temperature: float, top_k: int,
           top_p: float) -> jax.Array:
  """Token ids [B] from logits [B, V]; temperature 0 is greedy (argmax)."""
  if temperature <= 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = filter_logits(logits / temperature, top_k, top_p)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=('model', 'length', 'temperature',
                                             'top_k', 'top_p'))
def sample(model, params, prompt: jax.Array, key: jax.Array, *, length: int,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
  """Continues `prompt` (int32 [B, P], P >= 1) by `length` tokens -> int32 [B, length]."""
  carry = model.initial_carry(prompt.shape[0])
  logits, carry = model.apply({'params': params}, prompt, carry, train=False)

  def step(state, key):
    last_logits, carry = state
    token = choose(key, last_logits, temperature, top_k, top_p)
    logits, carry = model.apply({'params': params}, token[:, None], carry,
                                train=False)
    return (logits[:, -1], carry), token

  keys = jax.random.split(key, length)
  _, tokens = jax.lax.scan(step, (logits[:, -1], carry), keys)
  return tokens.T


def generate_ids(model, params, prompt_ids: np.ndarray, *, length: int,
                 temperature: float, top_k: int, top_p: float,
                 seed: int) -> np.ndarray:
  """Host-side wrapper: 1-D prompt ids -> 1-D generated ids (numpy)."""
  prompt = jnp.asarray(prompt_ids, jnp.int32)[None, :]
  tokens = sample(model, params, prompt, jax.random.PRNGKey(seed),
                  length=length, temperature=float(temperature),
                  top_k=int(top_k), top_p=float(top_p))
  return np.asarray(tokens[0])


def prompt_ids(prompt: str, vocab: data.Vocabulary, level: str,
               tokenizer=None) -> np.ndarray:
  """Encodes a prompt without the end-of-line token tokenize() would append.

  An empty prompt starts from the boundary token (<eos>, or '\\n' for chars
  and code_bpe), i.e. the start of a new sentence or line. tokenizer: the
  run's SentencePiece model, needed for a code_bpe prompt.
  """
  if level == 'code_bpe' and prompt:
    if tokenizer is None:
      raise ValueError("a prompt for a data.level='code_bpe' run needs its "
                       'SentencePiece model (run_files.load_tokenizer)')
    return data.piece_corpus.encode(prompt, tokenizer, vocab)
  tokens = prompt.split() if level == 'word' else list(prompt)
  if not tokens:
    # code_bpe: '\n' too; its vocab has an '<eos>' that the stream never holds
    boundary = (vocab.eos_id if vocab.eos_id is not None and level == 'word'
                else vocab.id_of('\n'))
    return np.asarray([boundary], np.int32)
  ids = vocab.encode(tokens)
  if np.all(ids == vocab.unk_id) and tokens != ['<unk>']:
    logging.warning('every prompt token is out of vocabulary (read as <unk>)')
  return ids


def sample_text(model, params, vocab: data.Vocabulary, level: str, gen,
                tokenizer=None) -> str:
  """The prompt and `gen.length` sampled tokens, as text (gen: the config's
  `generate` section; tokenizer: see prompt_ids)."""
  ids = generate_ids(
      model, params, prompt_ids(gen.prompt, vocab, level, tokenizer),
      length=gen.length,
      temperature=gen.temperature, top_k=gen.top_k, top_p=gen.top_p, seed=gen.seed)
  return continuation_text(gen.prompt, ids, vocab, level)


def continuation_text(prompt: str, ids, vocab: data.Vocabulary, level: str) -> str:
  """The prompt followed by the detokenized sampled `ids`."""
  text = data.detokenize(vocab.decode(np.asarray(ids)), level)
  separator = ' ' if level == 'word' and prompt.strip() else ''
  return prompt + separator + text
