"""The 'synthetic' Markov-chain source and its oracle NLL."""

import numpy as np
import pytest

from rnnlm_jax import configs
from rnnlm_jax.data import DataError, load_corpus
from rnnlm_jax.data.sources import synthetic


def synthetic_config(**overrides):
  data = configs.base_config().data
  data.source, data.level = 'synthetic', 'word'
  for key, value in overrides.items():  # synthetic_x -> data.synthetic.x
    if key.startswith('synthetic_'):
      data.synthetic[key.removeprefix('synthetic_')] = value
    else:
      data[key] = value
  return data


def test_corpus_shape_and_determinism():
  config = synthetic_config(synthetic_vocab_size=20,
                            synthetic_tokens=(5000, 1000, 2000))
  corpus = load_corpus(config)
  assert corpus.name == 'synthetic' and corpus.level == 'word'
  assert [len(corpus.split(s)) for s in ('train', 'valid', 'test')] == [
      5000, 1000, 2000]
  assert len(corpus.vocab) == 21  # <unk> + s0..s19 (all occur in train)
  assert corpus.vocab.eos_id is None
  assert all(t.startswith('s') for t in corpus.vocab.tokens[1:])
  again = load_corpus(config)
  assert again.fingerprint == corpus.fingerprint
  np.testing.assert_array_equal(again.test, corpus.test)
  assert set(corpus.oracle_nll) == {'train', 'valid', 'test'}
  other = load_corpus(synthetic_config(synthetic_vocab_size=20,
                                       synthetic_alpha=0.5,
                                       synthetic_tokens=(5000, 1000, 2000)))
  assert other.fingerprint != corpus.fingerprint


def test_char_level_is_rejected():
  with pytest.raises(DataError, match="data.level='char'"):
    load_corpus(synthetic_config(level='char'))


def test_oracle_follows_caps():
  config = synthetic_config(synthetic_tokens=(3000, 3000, 3000),
                            max_train_tokens=100, max_eval_tokens=50)
  corpus = load_corpus(config)
  assert len(corpus.train) == 100 and len(corpus.test) == 50
  _, _, nll, _ = synthetic.generate(50, 2, 0.1, (3000, 3000, 3000))
  np.testing.assert_allclose(corpus.oracle_nll['test'], nll['test'][:50].mean())


def test_oracle_matches_entropy_rate():
  chain, _, nll, _ = synthetic.generate(20, 2, 0.2, (100, 100, 200_000),
                                        seed=3)
  rate = synthetic.entropy_rate(chain)
  assert 0.5 < rate < np.log(20)
  np.testing.assert_allclose(nll['test'].mean(), rate, rtol=0.03)


def test_oracle_equals_nll_under_true_probabilities():
  chain, symbols, nll, _ = synthetic.generate(5, 1, 1.0, (500, 10, 10))
  s = symbols['train']
  expected = -np.log(chain.probs[s[:-1], s[1:]])
  np.testing.assert_allclose(nll['train'][1:], expected)
  np.testing.assert_allclose(nll['train'][0], np.log(5))


def count_model_nll(train, test, v, k, smoothing=0.05):
  """NLL on test of an add-`smoothing` order-k count model fit on train."""
  chain = synthetic.MarkovChain(v, k, np.zeros((v ** k, v)))
  counts = np.full((v ** k, v), smoothing)
  np.add.at(counts, (synthetic.contexts_of(chain, train)[k:], train[k:]), 1)
  probs = counts / counts.sum(1, keepdims=True)
  ctx = synthetic.contexts_of(chain, test)[k:]
  return -np.log(probs[ctx, test[k:]]).mean()


def test_count_model_cannot_beat_the_oracle():
  v, k = 10, 2
  corpus = load_corpus(synthetic_config(
      synthetic_vocab_size=v, synthetic_order=k, synthetic_alpha=0.3,
      synthetic_tokens=(100_000, 1000, 50_000)))
  _, symbols, nll, _ = synthetic.generate(v, k, 0.3, (100_000, 1000, 50_000))
  estimate = count_model_nll(symbols['train'], symbols['test'], v, k)
  oracle = nll['test'][k:].mean()
  np.testing.assert_allclose(corpus.oracle_nll['test'], nll['test'].mean())
  # The estimate converges to the oracle from above; noise is ~0.01 nats.
  assert oracle - 0.01 < estimate < oracle + 0.1
