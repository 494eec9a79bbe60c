"""Perplexity / bits-per-token of a model on a token stream."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from rnnlm_jax import data
from rnnlm_jax.train import parallel
from rnnlm_jax.train.steps import eval_step
from rnnlm_jax.train.state import TrainState


def initial_carry(model, batch_size: int, sharding):
  """Zero hidden state of `batch_size` rows, laid out by `sharding`.

  Made by a jit with out_shardings, which works on every host of a multi-host
  mesh; cached so the reset at each epoch (or sentence batch) never recompiles.
  """
  return _zeros_fn(model, batch_size, sharding)()


@functools.lru_cache(maxsize=32)
def _zeros_fn(model, batch_size: int, sharding):
  return jax.jit(lambda: model.initial_carry(batch_size), out_shardings=sharding)


def summarize(total_nll: float, num_tokens: float) -> dict[str, float]:
  """Mean NLL (nats/token), perplexity and bits per token (= BPC for chars)."""
  loss = total_nll / max(num_tokens, 1.0)
  return {'loss': loss, 'ppl': math.exp(min(loss, 700.0)),
          'bits': loss / math.log(2), 'tokens': num_tokens}


def evaluate(state: TrainState, model, stream: np.ndarray, *, batch_size: int,
             seq_len: int, mesh: Mesh) -> dict[str, float]:
  """Scores every token of `stream` once, carrying state across windows.

  The last partial window is padded and masked rather than dropped, so the
  count is exact. Sums stay on the device until the end (no per-step sync).
  """
  sharding = parallel.batch_sharded(mesh, batch_size)
  rows = parallel.process_rows(batch_size, sharding)
  carry = initial_carry(model, batch_size, sharding)
  total_nll = jnp.zeros((), jnp.float32)
  num_tokens = jnp.zeros((), jnp.float32)
  for batch in data.bptt_windows(stream, batch_size, seq_len, drop_last=False,
                                 rows=rows):
    batch = parallel.to_global(batch, sharding, batch_size)
    nll, count, carry = eval_step(state, batch, carry)
    total_nll += nll
    num_tokens += count
  return summarize(float(total_nll), float(num_tokens))
