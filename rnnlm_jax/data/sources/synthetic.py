"""The 'synthetic' source: a random order-k Markov chain with a known oracle.

The chain has V symbols and V**k contexts (the previous k symbols); the
next-symbol distribution of each context is drawn from a symmetric
Dirichlet(alpha) (small alpha: peaked, low-entropy rows). Because the true
model is known, every split comes with the oracle NLL: the mean of
-log p_true(token | previous k tokens) over the split's tokens, the floor any
model can reach in expectation.

Each split is an independent run of the same chain (own random stream): its
first k symbols are drawn uniformly (the start distribution; their oracle NLL
is log V), the rest from the chain. With the default seed the data set is a
function of the data.synthetic_* keys alone, so runs with different model
seeds train on the same data.
"""

import bisect
import dataclasses
from typing import Sequence

import numpy as np

from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError

_MAX_TABLE = 50_000_000  # V**(k+1) probabilities; ~400 MB as float64


@dataclasses.dataclass(frozen=True)
class MarkovChain:
  """An order-k chain over symbols 0..V-1.

  Attributes:
    vocab_size: V.
    order: k (0: i.i.d. symbols).
    probs: float64 [V**k, V]; row c = P(next | context c), where context c
      encodes the previous k symbols in base V, oldest first.
  """
  vocab_size: int
  order: int
  probs: np.ndarray

  @property
  def num_contexts(self) -> int:
    return self.vocab_size ** self.order


def make_chain(vocab_size: int, order: int, alpha: float,
               rng: np.random.Generator) -> MarkovChain:
  """Draws the transition table, rows ~ Dirichlet(alpha * ones(V))."""
  if vocab_size < 2 or order < 0 or alpha <= 0:
    raise DataError(
        f'data.synthetic.vocab_size={vocab_size} (>= 2), synthetic_order='
        f'{order} (>= 0) and synthetic_alpha={alpha} (> 0) are out of range')
  if vocab_size ** (order + 1) > _MAX_TABLE:
    raise DataError(f'data.synthetic.vocab_size={vocab_size} ** '
                    f'(synthetic_order={order} + 1) transition table is too '
                    f'big (> {_MAX_TABLE:,}); lower one of them')
  probs = rng.dirichlet(np.full(vocab_size, float(alpha)),
                        size=vocab_size ** order)
  return MarkovChain(vocab_size, order, probs)


def sample(chain: MarkovChain, length: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """One run of the chain.

  Returns:
    symbols: int32 [length].
    nll: float64 [length], -log p_true of each symbol given its history.
  """
  v, k = chain.vocab_size, chain.order
  symbols = np.empty(length, dtype=np.int32)
  head = min(k, length)
  symbols[:head] = rng.integers(0, v, size=head)
  cdf = np.cumsum(chain.probs, axis=1)
  cdf[:, -1] = 1.0  # guard against round-off leaving u > cdf[-1]
  uniforms = rng.random(length).tolist()
  ctx = 0
  for s in symbols[:head]:
    ctx = ctx * v + int(s)
  # Pure-Python bisect on cached list rows: ~5x faster per step than numpy
  # calls on single rows, and only visited contexts are converted.
  rows = {}
  out = []
  for t in range(head, length):
    row = rows.get(ctx)
    if row is None:
      row = rows[ctx] = cdf[ctx].tolist()
    s = bisect.bisect_right(row, uniforms[t])
    out.append(s)
    ctx = (ctx * v + s) % chain.num_contexts
  symbols[head:] = out
  return symbols, token_nll(chain, symbols)


def contexts_of(chain: MarkovChain, symbols: np.ndarray) -> np.ndarray:
  """int64 [N]: context index of each position (valid from position k on)."""
  v, k = chain.vocab_size, chain.order
  ctx = np.zeros(len(symbols), dtype=np.int64)
  for lag in range(1, k + 1):  # symbol at t-lag is digit (k-lag) of base V
    ctx[lag:] += symbols[:-lag].astype(np.int64) * v ** (lag - 1)
  return ctx


def token_nll(chain: MarkovChain, symbols: np.ndarray) -> np.ndarray:
  """float64 [N]: -log p_true per token; log V for the first k tokens."""
  with np.errstate(divide='ignore'):
    nll = -np.log(chain.probs[contexts_of(chain, symbols), symbols])
  nll[:chain.order] = np.log(chain.vocab_size)
  return nll


def stationary(chain: MarkovChain, tol: float = 1e-12,
               max_iters: int = 10_000) -> np.ndarray:
  """float64 [V**k]: stationary distribution over contexts (power iteration)."""
  v, n = chain.vocab_size, chain.num_contexts
  if chain.order == 0:
    return np.ones(1)
  pi = np.full(n, 1.0 / n)
  for _ in range(max_iters):
    flow = pi[:, None] * chain.probs  # [context, next symbol]
    # Next context = (context minus its oldest symbol, next symbol): sum the
    # flow over the oldest symbol (the most significant base-V digit).
    new = flow.reshape(v, n // v, v).sum(0).reshape(-1)
    if np.abs(new - pi).sum() < tol:
      return new
    pi = new
  return pi


def entropy_rate(chain: MarkovChain) -> float:
  """Analytic entropy rate in nats: sum_c pi(c) H(P(. | c))."""
  p = chain.probs
  with np.errstate(divide='ignore', invalid='ignore'):
    h = -np.where(p > 0, p * np.log(p), 0.0).sum(1)
  return float(stationary(chain) @ h)


def generate(vocab_size: int, order: int, alpha: float,
             lengths: Sequence[int], seed: int = 0):
  """The chain and its three splits.

  Returns:
    chain: MarkovChain.
    symbols: {split: int32 [N_split]}.
    nll: {split: float64 [N_split]} oracle NLL per token.
    fingerprint: md5 of the generating parameters.
  """
  lengths = tuple(int(n) for n in lengths)
  if len(lengths) != 3 or min(lengths) < 1:
    raise DataError(f'data.synthetic.tokens={lengths} must be 3 positive '
                    'lengths (train, valid, test)')
  chain_rng, *split_rngs = [np.random.default_rng(s) for s in
                            np.random.SeedSequence(seed).spawn(4)]
  chain = make_chain(vocab_size, order, alpha, chain_rng)
  symbols, nll = {}, {}
  for split, n, rng in zip(SPLITS, lengths, split_rngs):
    symbols[split], nll[split] = sample(chain, n, rng)
  fingerprint = md5_of(['synthetic', repr((vocab_size, order, float(alpha),
                                           lengths, seed))])
  return chain, symbols, nll, fingerprint


def token_names(vocab_size: int) -> list[str]:
  """Token strings 's0'..'s{V-1}' of the symbols."""
  return [f's{i}' for i in range(vocab_size)]
