"""Sort-based n-gram counting for the Kneser-Ney LM (numpy only).

N-grams are stored per order k as a sorted int64 key array with the key
    key_k(h w) = id_{k-1}(h) * base + w,        key_1(w) = w,
where id_{k-1}(h) is h's index in the sorted order-(k-1) key array and
base = V + 1 (the extra id V is the sentence start `<s>`). A k-gram is thus
its prefix's index plus one token, which fits int64 for any order (a direct
V**k encoding overflows for V = 10k at k = 5), and all continuations of a
context h are one contiguous slice of key_k.

Sequence convention (SRILM's): the stream is cut into segments after every
`boundary_id`; each segment gets a leading `<s>` (id V) that is a context only,
never predicted, and no n-gram reaches before it. With no boundary the whole
stream is one segment (one leading `<s>`).
"""

import numpy as np


def pad_segments(stream: np.ndarray, bos_id: int,
                 boundary_id: int | None) -> tuple[np.ndarray, np.ndarray]:
  """Inserts `<s>` before every segment.

  Args:
    stream: int [N] token ids (no `<s>`).
    bos_id: the id used for `<s>`.
    boundary_id: a segment ends after each occurrence; None: one segment.

  Returns:
    (padded int64 [N + S], start int64 [N + S]): the padded tokens and, per
    padded position, the position of its segment's `<s>`.
  """
  stream = np.asarray(stream, dtype=np.int64).reshape(-1)
  n = len(stream)
  if boundary_id is None:
    starts = np.zeros(1, dtype=np.int64)
  else:
    ends = np.flatnonzero(stream == boundary_id) + 1
    starts = np.concatenate([[0], ends[ends < n]]).astype(np.int64)
  # Token j moves right by the number of segments starting at or before it.
  shift = np.searchsorted(starts, np.arange(n), side='right')
  padded = np.empty(n + len(starts), dtype=np.int64)
  bos_pos = starts + np.arange(len(starts))
  padded[bos_pos] = bos_id
  padded[np.arange(n) + shift] = stream
  seg = np.zeros(len(padded), dtype=np.int64)
  seg[bos_pos] = 1
  start = bos_pos[np.cumsum(seg) - 1]
  return padded, start


def count_ngrams(padded: np.ndarray, start: np.ndarray, order: int,
                 base: int) -> tuple[list, list, list]:
  """Distinct n-grams of orders 1..order ending at every padded position.

  Only two orders' position ids are alive at a time (the char-level corpus
  has ~10M positions), so continuation counts are taken on the way up.

  Returns:
    keys: per order k (index k-1), sorted unique int64 keys [U_k].
    raw: per order, int64 [U_k] occurrence counts.
    cont: per order k < order, int64 [U_k] continuation counts N1+(. g):
      the number of distinct tokens seen right before g.
  """
  pos = np.arange(len(padded))
  keys, raw, cont = [], [], []
  prev = None  # id of the (k-1)-gram ending at each position, -1: none
  for k in range(1, order + 1):
    valid = pos - start >= k - 1
    if k == 1:
      key = padded
    else:
      prefix = np.full(len(padded), -1, dtype=np.int64)
      prefix[1:] = prev[:-1]
      valid &= prefix >= 0
      key = prefix * base + padded
    uniq, inv, cnt = np.unique(key[valid], return_inverse=True,
                               return_counts=True)
    inv = inv.reshape(-1)
    ids = np.full(len(padded), -1, dtype=np.int64)
    ids[valid] = inv
    if k > 1:
      # Each k-gram type ends with one (k-1)-gram suffix, at the same position
      # (every occurrence writes the same value).
      suffix = np.empty(len(uniq), dtype=np.int64)
      suffix[inv] = prev[valid]
      cont.append(np.bincount(suffix, minlength=len(keys[-1])).astype(np.int64))
    keys.append(uniq)
    raw.append(cnt.astype(np.int64))
    prev = ids
  return keys, raw, cont


def modified_counts(keys: list, raw: list, cont: list, base: int,
                    bos_id: int) -> list:
  """The counts each order's distribution is estimated from.

  Highest order: raw counts. Lower orders: continuation counts N1+(. g),
  except for n-grams that start with `<s>` (nothing can precede them), which
  keep their raw counts, as SRILM does. The 1-gram `<s>` is never predicted:
  count 0.
  """
  counts = []
  for k in range(1, len(keys)):
    starts_bos = first_token(keys, k, base) == bos_id
    counts.append(np.where(starts_bos, raw[k - 1], cont[k - 1]))
  counts.append(raw[-1].copy())
  counts[0][keys[0] == bos_id] = 0
  return counts


def first_token(keys: list, k: int, base: int) -> np.ndarray:
  """int64 [U_k]: the first token of every order-k n-gram (k is 1-based)."""
  ids = np.arange(len(keys[k - 1]))
  for j in range(k, 1, -1):
    ids = keys[j - 1][ids] // base
  return keys[0][ids]


def discounts(counts: np.ndarray) -> np.ndarray:
  """Chen & Goodman's modified-KN discounts [D1, D2, D3+] of one order.

  D_k = k - (k + 1) Y n_{k+1} / n_k with Y = n1 / (n1 + 2 n2), n_k the number
  of n-grams with count k. Small corpora can leave the formula undefined
  (n_k = 0: no n-gram uses D_k unless k = 3, when all counts are >= 4) or
  outside [0, k]; then D_k = 0.5 and clipping to [0, k]. With these rules
  the held-out mass is positive for any non-empty order (D1 = Y > 0 when
  n1 > 0, else the first count class present has D_k = k or 0.5), so the
  unigram level always leaves mass for unseen words.
  """
  n = np.bincount(np.minimum(counts, 5), minlength=6).astype(np.float64)
  y = n[1] / (n[1] + 2 * n[2]) if n[1] + n[2] > 0 else 0.0
  d = np.full(3, 0.5)
  for k in (1, 2, 3):
    if n[k] > 0:
      d[k - 1] = k - (k + 1) * y * n[k + 1] / n[k]
  return np.clip(d, 0.0, [1.0, 2.0, 3.0])


def context_stats(keys: list, counts: list, disc: list, base: int,
                  ) -> tuple[list, list]:
  """Per order k >= 2, per context (an order-(k-1) id): denominator, gamma.

  denom[h] = sum_w c_k(h w); gamma[h] = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.))
  / denom[h] (0 where the context has no continuation). Index 0 (k = 1) holds
  the single empty context.
  """
  denoms, gammas = [], []
  for k in range(1, len(keys) + 1):
    c = counts[k - 1]
    parent = keys[k - 1] // base if k > 1 else np.zeros(len(c), np.int64)
    size = len(keys[k - 2]) if k > 1 else 1
    denom = np.bincount(parent, weights=c, minlength=size)
    held = np.bincount(parent, weights=discount_of(c, disc[k - 1]),
                       minlength=size)
    gamma = np.divide(held, denom, out=np.zeros(size), where=denom > 0)
    denoms.append(denom)
    gammas.append(gamma)
  return denoms, gammas


def discount_of(c: np.ndarray, d: np.ndarray) -> np.ndarray:
  """float [U]: the discount D(c) of each count (0 for c = 0)."""
  table = np.array([0.0, d[0], d[1], d[2]])
  return table[np.minimum(c, 3)]


def lookup_ids(keys: list, padded: np.ndarray, start: np.ndarray,
               base: int) -> list:
  """Looks a new padded stream's n-grams up in fitted `keys`.

  Returns per order int64 [L]: the fitted id of the k-gram ending at each
  position, -1 where it was never seen (or would reach before `<s>`).
  """
  pos = np.arange(len(padded))
  out = []
  for k in range(1, len(keys) + 1):
    ok = pos - start >= k - 1
    if k == 1:
      key = padded
    else:
      prefix = np.full(len(padded), -1, dtype=np.int64)
      prefix[1:] = out[-1][:-1]
      ok &= prefix >= 0
      key = prefix * base + padded
    out.append(find(keys[k - 1], key, ok))
  return out


def find(sorted_keys: np.ndarray, key, ok=True):
  """Index of each `key` in `sorted_keys`, -1 where absent or not `ok`."""
  key = np.asarray(key, dtype=np.int64)
  idx = np.searchsorted(sorted_keys, key)
  idx = np.minimum(idx, len(sorted_keys) - 1)
  hit = ok & (sorted_keys[idx] == key)
  return np.where(hit, idx, -1)
