"""Data: corpora, vocabularies and batching for recurrent language models,
and sentence pairs for sequence-to-sequence models (paired*.py).

numpy only (no jax/flax), so data code runs anywhere; tensorflow_datasets is
imported lazily by the 'tfds' source alone.

  corpus = load_corpus(config.data)          # Corpus: vocab + id streams
  for batch in bptt_windows(corpus.train, batch_size=20, seq_len=35):
    ...                                      # Batch(inputs, targets, mask)

  pairs = load_paired('files', path='.../multi30k', vocab_min_count=2)
  for batch in pair_batches(*pairs.split('train'), 128, seed=0, epoch=0):
    ...                                      # PairBatch(source, ..., mask)

With config.data.cache_dir set, the text is tokenized once (streaming) and
later loads memory-map the ids (cache.py).
"""

from rnnlm_jax.data import piece_corpus
from rnnlm_jax.data.batching import Batch
from rnnlm_jax.data.batching import bptt_windows
from rnnlm_jax.data.batching import num_bptt_windows
from rnnlm_jax.data.corpus import Corpus
from rnnlm_jax.data.corpus import SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.loader import load_corpus
from rnnlm_jax.data.loader import MODES
from rnnlm_jax.data.loader import SOURCES
from rnnlm_jax.data.paired import load_paired
from rnnlm_jax.data.paired import PairedCorpus
from rnnlm_jax.data.paired import read_pairs
from rnnlm_jax.data.paired_batching import eval_batches
from rnnlm_jax.data.paired_batching import pair_batches
from rnnlm_jax.data.paired_batching import PairBatch
from rnnlm_jax.data.plans import EpochPlan
from rnnlm_jax.data.plans import InstructPlan
from rnnlm_jax.data.plans import PairPlan
from rnnlm_jax.data.sentences import num_sentence_batches
from rnnlm_jax.data.sentences import sentence_batches
from rnnlm_jax.data.text import detokenize
from rnnlm_jax.data.text import EOS
from rnnlm_jax.data.text import LEVELS
from rnnlm_jax.data.text import tokenize
from rnnlm_jax.data.text import UNK
from rnnlm_jax.data.vocab import Vocabulary

__all__ = [
    'Batch', 'Corpus', 'DataError', 'EOS', 'EpochPlan', 'InstructPlan', 'LEVELS', 'MODES', 'PairBatch', 'PairPlan',
    'PairedCorpus', 'SOURCES', 'SPLITS', 'UNK', 'Vocabulary', 'bptt_windows',
    'detokenize', 'eval_batches', 'load_corpus', 'load_paired',
    'num_bptt_windows', 'num_sentence_batches', 'pair_batches', 'piece_corpus',
    'read_pairs',
    'sentence_batches', 'tokenize',
]
