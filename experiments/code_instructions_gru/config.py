r"""Encoder-decoder GRU with additive attention: docstring -> Python function.

Pairs of data.paired.format='code_instructions' (rnnlm_jax/data/
code_instructions.py): the first paragraph of a stdlib function's docstring
-> the function's source without its docstring, split by file as the stdlib
LM corpus (6,439 pairs on Python 3.11: 5,714 / 341 / 384; docs/code_data.md).
Both sides are code_bpe SentencePiece pieces (8,000, trained on the train
split, whitespace and newlines kept, not lower-cased), so a decoded response
is compared with the real source exactly. The model is the Multi30k
attention model's shape (recipes.multi30k). Untuned: a starting point.

  python -m rnnlm_jax.experiment train --config experiments/code_instructions_gru/config.py
  python -m rnnlm_jax.experiment translate --config experiments/code_instructions_gru/config.py \
      --text 'Return the number of items in the queue.'
"""

from rnnlm_jax import recipes


def get_config():
  c = recipes.multi30k('additive')
  c.data.path = ''
  c.data.lowercase = False  # code_bpe keeps the code byte for byte
  c.data.vocab_min_count = 1
  p = c.data.paired
  p.format = 'code_instructions'
  p.source_lang, p.target_lang = 'doc', 'py'  # vocab.doc.json, spm.py.model
  p.tokenizer, p.spm_model_type = 'sentencepiece', 'code_bpe'
  p.spm_vocab_size = 8000
  # Train pairs cut at 64 / 512 pieces (95% of responses are under ~350);
  # valid and test pairs are scored whole.
  p.max_source_len, p.max_target_len = 64, 512
  c.train.batch_size = 32
  c.eval.batch_size = c.eval.test_batch_size = 32
  c.eval.translate.max_len = 512
  return c
