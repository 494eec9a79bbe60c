"""Data: corpora, vocabularies and batching for recurrent language models.

numpy only (no jax/flax), so data code runs anywhere; tensorflow_datasets is
imported lazily by the 'tfds' source alone.

  corpus = load_corpus(config.data)          # Corpus: vocab + id streams
  for batch in bptt_windows(corpus.train, batch_size=20, seq_len=35):
    ...                                      # Batch(inputs, targets, mask)

With config.data.cache_dir set, the text is tokenized once (streaming) and
later loads memory-map the ids (cache.py).
"""

from rnnlm_jax.data.batching import Batch
from rnnlm_jax.data.batching import bptt_windows
from rnnlm_jax.data.batching import num_bptt_windows
from rnnlm_jax.data.corpus import Corpus
from rnnlm_jax.data.corpus import SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.loader import load_corpus
from rnnlm_jax.data.loader import MODES
from rnnlm_jax.data.loader import SOURCES
from rnnlm_jax.data.sentences import num_sentence_batches
from rnnlm_jax.data.sentences import sentence_batches
from rnnlm_jax.data.text import detokenize
from rnnlm_jax.data.text import EOS
from rnnlm_jax.data.text import LEVELS
from rnnlm_jax.data.text import tokenize
from rnnlm_jax.data.text import UNK
from rnnlm_jax.data.vocab import Vocabulary

__all__ = [
    'Batch', 'Corpus', 'DataError', 'EOS', 'LEVELS', 'MODES', 'SOURCES',
    'SPLITS', 'UNK', 'Vocabulary', 'bptt_windows', 'detokenize', 'load_corpus',
    'num_bptt_windows', 'num_sentence_batches', 'sentence_batches', 'tokenize',
]
