"""Interpolated modified Kneser-Ney n-gram LM over token ids (numpy only).

Chen & Goodman (1998), "An empirical study of smoothing techniques for
language modeling", section 3 (modified KN), interpolated form:

  p_k(w | h) = max(c_k(h w) - D_k(c_k(h w)), 0) / c_k(h .)
               + gamma_k(h) p_{k-1}(w | h'),
  gamma_k(h) = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .)) / c_k(h .),

with h' = h without its first token, three discounts per order from that
order's count-of-counts (ngram_counts.discounts), c_k raw counts at the top
order and continuation counts below it, and p_0(w) = 1 / V, so a word never
seen in training still gets mass. A context never seen (c_k(h .) = 0) passes
p_{k-1} through unchanged.

Counting convention (SRILM's `ngram-count -kndiscount -interpolate` on text
with one sentence per line): with `boundary_id` set (word level, `<eos>`),
the stream is cut after every boundary token; each piece is a sentence
`<s> w1 .. wn </s>` where `</s>` is the boundary token itself (predicted,
counted in scores) and `<s>` is an internal context-only id V (never
predicted, not in the V-way distribution). No n-gram crosses a sentence
boundary, and n-grams starting with `<s>` keep raw counts at lower orders.
With boundary_id=None (char level) the stream is one sequence with one `<s>`.

  lm = KneserNeyLM.fit(corpus.train, len(vocab), order=5,
                       boundary_id=vocab.eos_id)
  nats = -lm.log_prob(corpus.test).mean()       # perplexity = exp(nats)
"""

import json
import os

import numpy as np

from rnnlm_jax.models import ngram_counts as nc

_FORMAT = 'rnnlm_jax.kneser_ney'
_VERSION = 1
ORDERS = range(2, 8)


class KneserNeyLM:
  """A fitted model; build with `fit` or `load`.

  Attributes:
    order: n-gram order N (2..7).
    vocab_size: V; ids 0..V-1 are predicted, V is the internal `<s>`.
    boundary_id: the sentence-end id, or None (one sequence).
    discounts: float [N, 3]: [D1, D2, D3+] of orders 1..N.
    meta: small JSON-able dict saved with the model (e.g. vocab fingerprint).
  """

  def __init__(self, keys: list, counts: list, discounts: np.ndarray,
               vocab_size: int, boundary_id: int | None, meta: dict | None):
    self.order = len(keys)
    self.vocab_size = int(vocab_size)
    self.boundary_id = None if boundary_id is None else int(boundary_id)
    self.discounts = np.asarray(discounts, dtype=np.float64)
    self.meta = dict(meta or {})
    self._keys = keys
    self._counts = counts
    self._base = self.vocab_size + 1
    self._bos = self.vocab_size
    self._denoms, self._gammas = nc.context_stats(
        keys, counts, list(self.discounts), self._base)
    self._unigram = self._unigram_probs()

  @classmethod
  def fit(cls, stream: np.ndarray, vocab_size: int, order: int,
          boundary_id: int | None = None,
          meta: dict | None = None) -> 'KneserNeyLM':
    """Counts all n-grams of `stream` (int [N], ids < vocab_size) at once."""
    if order not in ORDERS:
      raise ValueError(f'Kneser-Ney order={order} must be in 2..7')
    stream = _check_ids(stream, vocab_size, 'fit stream')
    if boundary_id is not None and not 0 <= boundary_id < vocab_size:
      raise ValueError(f'boundary_id={boundary_id} is outside the vocabulary '
                       f'(size {vocab_size})')
    if len(stream) == 0:
      raise ValueError('cannot fit a Kneser-Ney LM on an empty stream')
    base, bos = vocab_size + 1, vocab_size
    padded, start = nc.pad_segments(stream, bos, boundary_id)
    keys, raw, cont = nc.count_ngrams(padded, start, order, base)
    counts = nc.modified_counts(keys, raw, cont, base, bos)
    disc = np.stack([nc.discounts(c) for c in counts])
    return cls(keys, counts, disc, vocab_size, boundary_id, meta)

  def _unigram_probs(self) -> np.ndarray:
    """float [V]: p_1, interpolated with uniform 1 / V."""
    c1 = np.zeros(self.vocab_size, dtype=np.int64)
    known = self._keys[0] < self.vocab_size  # drops `<s>`
    c1[self._keys[0][known]] = self._counts[0][known]
    total = c1.sum()
    held = nc.discount_of(c1, self.discounts[0])
    return ((c1 - held) / total
            + self._gammas[0][0] / self.vocab_size)

  def _mix(self, k: int, p_lower, ctx, gram):
    """One interpolation step at order k for matching arrays of ids."""
    c = np.where(gram >= 0, self._counts[k - 1][np.maximum(gram, 0)], 0)
    safe = np.maximum(ctx, 0)
    denom = np.where(ctx >= 0, self._denoms[k - 1][safe], 0.0)
    seen = denom > 0
    top = np.maximum(c - nc.discount_of(c, self.discounts[k - 1]), 0.0)
    mixed = (np.divide(top, denom, out=np.zeros(len(top)), where=seen)
             + self._gammas[k - 1][safe] * p_lower)
    return np.where(seen, mixed, p_lower)

  def log_prob(self, stream: np.ndarray) -> np.ndarray:
    """float64 [N]: natural-log probability of every token of `stream`.

    Same convention as `fit`: the stream's start and each position after a
    boundary token begin a new sentence (context `<s>`).
    """
    stream = _check_ids(stream, self.vocab_size, 'scored stream')
    padded, start = nc.pad_segments(stream, self._bos, self.boundary_id)
    ids = nc.lookup_ids(self._keys, padded, start, self._base)
    predicted = padded != self._bos
    p = self._unigram[np.minimum(padded, self.vocab_size - 1)]
    for k in range(2, self.order + 1):
      ctx = np.full(len(padded), -1, dtype=np.int64)
      ctx[1:] = ids[k - 2][:-1]
      p = self._mix(k, p, ctx, ids[k - 1])
    return np.log(p[predicted])

  def next_distribution(self, context_ids) -> np.ndarray:
    """float64 [V]: p(next token | context), summing to 1.

    `context_ids` (int [T], may be empty) are the tokens before the next one;
    its start is a sentence (or stream) start, and a boundary token in it
    starts a new sentence.
    """
    h = _check_ids(context_ids, self.vocab_size, 'context')
    if self.boundary_id is not None:
      cut = np.flatnonzero(h == self.boundary_id)
      h = h[cut[-1] + 1:] if len(cut) else h
    h = np.concatenate([[self._bos], h])[-(self.order - 1):]
    p = self._unigram.copy()
    for k in range(2, len(h) + 2):
      ctx = self._ngram_id(h[len(h) - (k - 1):])
      if ctx < 0 or self._denoms[k - 1][ctx] <= 0:
        break  # a longer context containing this one is unseen too
      keys = self._keys[k - 1]
      lo, hi = np.searchsorted(keys, [ctx * self._base, (ctx + 1) * self._base])
      c = self._counts[k - 1][lo:hi]
      top = np.maximum(c - nc.discount_of(c, self.discounts[k - 1]), 0.0)
      p *= self._gammas[k - 1][ctx]
      p[keys[lo:hi] % self._base] += top / self._denoms[k - 1][ctx]
    return p

  def _ngram_id(self, tokens: np.ndarray) -> int:
    """Index of `tokens` in the order-len(tokens) table, or -1."""
    idx = -1
    for j, t in enumerate(tokens):
      key = int(t) if j == 0 else idx * self._base + int(t)
      idx = int(nc.find(self._keys[j], key))
      if idx < 0:
        return -1
    return idx

  def num_ngrams(self) -> list[int]:
    """Distinct n-grams stored per order 1..N (`<s>` included at order 1)."""
    return [len(k) for k in self._keys]

  def save(self, path: str | os.PathLike) -> None:
    """Writes one .npz: keys and counts per order, discounts, JSON header."""
    header = {'format': _FORMAT, 'version': _VERSION, 'order': self.order,
              'vocab_size': self.vocab_size, 'boundary_id': self.boundary_id,
              'meta': self.meta}
    arrays = {'header': np.array(json.dumps(header)),
              'discounts': self.discounts}
    for k in range(self.order):
      arrays[f'keys_{k + 1}'] = self._keys[k]
      arrays[f'counts_{k + 1}'] = self._counts[k]
    path = os.fspath(path)
    tmp = path + '.tmp.npz'
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)  # atomic: never a half-written model

  @classmethod
  def load(cls, path: str | os.PathLike) -> 'KneserNeyLM':
    """Reads a file written by `save`; anything else raises ValueError."""
    try:
      with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z['header']))
        if header.get('format') != _FORMAT:
          raise KeyError('format')
        n = int(header['order'])
        keys = [z[f'keys_{k}'] for k in range(1, n + 1)]
        counts = [z[f'counts_{k}'] for k in range(1, n + 1)]
        disc = z['discounts']
    except (OSError, KeyError, ValueError) as e:
      raise ValueError(f'{os.fspath(path)} is not a Kneser-Ney model written '
                       f'by KneserNeyLM.save ({type(e).__name__}: {e})'
                       ) from None
    return cls(keys, counts, disc, header['vocab_size'],
               header['boundary_id'], header.get('meta'))


def _check_ids(ids, vocab_size: int, what: str) -> np.ndarray:
  ids = np.asarray(ids, dtype=np.int64).reshape(-1)
  if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
    bad = ids[(ids < 0) | (ids >= vocab_size)][0]
    raise ValueError(f'{what} holds token id {bad}, outside the vocabulary '
                     f'(size {vocab_size})')
  return ids
