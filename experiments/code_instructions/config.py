r"""Following instructions drawn from open-source code: docstring -> function.

Pairs of data.paired.format='code_instructions' (rnnlm_jax/data/
code_instructions.py): the first paragraph of a Python 3.11 stdlib function's
docstring -> the function's source without its docstring, split by file as
the stdlib LM corpus (6,439 pairs: 5,714 / 341 / 384). Every arm reads
code_bpe SentencePiece pieces (BPE, byte fallback, whitespace kept; 4,000
pieces) and is scored on the same test pairs: the response's NLL in bits per
character (comparable across the arms' tokenizers), and the greedy responses'
exact match, chrF, BLEU and parse rate (rnnlm_jax/code_metrics.py).

Arms, at one parameter budget (1.52-1.55 M; the table has the counts):

  stdlib_code_lm   the pretraining step: an LSTM LM (1 x 256, tied
                   embeddings) on the stdlib corpus's train split (the same
                   files as the pairs' train split), code_bpe pieces;
  lstm_scratch     that LSTM, decoder-only, prompt-masked, from scratch;
  lstm_pretrained  the same, train.init_from the stdlib code LM (its params
                   and its tokenizer);
  gru_attention    the GRU encoder-decoder with additive attention
                   (embeddings 96, bidirectional encoder 2 x 96, decoder
                   256, the output tied to the target embedding);
  transformer      a decoder-only Transformer (2 pre-LN blocks, d_model 176,
                   tied embeddings), prompt-masked, from scratch.

  python -m rnnlm_jax.experiment sweep experiments/code_instructions
  python -m rnnlm_jax.experiment sweep experiments/code_instructions --smoke

Hardware, wall time and the table: experiments/code_instructions/README.md.
"""

from rnnlm_jax import configs

SPM_PIECES = 4000
ROW_TOKENS = 256  # prompt + response pieces per row; longer responses are cut
RESPOND_TOKENS = 128  # most pieces of a decoded response
RESPOND_PAIRS = 128  # responses decoded: the first test pairs (CPU time)
EPOCHS = 4

def get_config():
  """The decoder-only instruct arm (lstm_scratch); the others override it."""
  c = configs.base_config()
  c.task = 'instruct'
  c.seed = 0
  c.data.level = 'code_bpe'
  c.data.spm_vocab_size = SPM_PIECES
  c.data.paired.format = 'code_instructions'
  c.data.instruct.max_len = ROW_TOKENS
  c.model.type, c.model.cell, c.model.num_layers = 'rnn', 'lstm', 1
  c.model.hidden_size = c.model.embed_size = 256
  c.model.tie_embeddings = True
  c.model.dropout_embed = c.model.dropout_output = 0.2
  c.train.batch_size = 32
  c.train.num_epochs = EPOCHS
  c.train.optimizer = 'adam'
  c.train.learning_rate = 2e-3
  c.train.schedule = 'cosine'
  c.train.warmup_steps = 100
  c.train.clip_norm = 1.0
  c.train.loss_normalization = 'token'
  c.train.log_every_steps = 50
  c.train.eval_every_steps = 0  # once per epoch
  c.train.progress_bar = False
  c.eval.batch_size = c.eval.test_batch_size = 32
  c.eval.respond.max_len = RESPOND_TOKENS
  c.eval.respond.max_pairs = RESPOND_PAIRS
  c.generate.length = RESPOND_TOKENS
  return c


PRETRAIN = {
    'task': 'lm', 'data.source': 'stdlib', 'data.mode': 'stream',
    'train.seq_len': 128, 'train.num_epochs': 1,
    'data.max_train_tokens': 1_500_000, 'data.max_eval_tokens': 100_000,
    'eval.seq_len': 128, 'train.eval_every_steps': 150,
}

GRU_ATTENTION = {
    'task': 'seq2seq', 'model.type': 'seq2seq', 'model.embed_size': 96,
    'model.tie_embeddings': True, 'model.dropout': 0.2,
    'model.seq2seq.encoder_cell': 'gru', 'model.seq2seq.decoder_cell': 'gru',
    'model.seq2seq.encoder_hidden': 96, 'model.seq2seq.bidirectional': True,
    'model.seq2seq.decoder_hidden': 256, 'model.seq2seq.attention': 'additive',
    'data.paired.source_lang': 'doc', 'data.paired.target_lang': 'py',
    'data.paired.tokenizer': 'sentencepiece',
    'data.paired.spm_model_type': 'code_bpe',
    'data.paired.spm_vocab_size': SPM_PIECES,
    'data.paired.max_source_len': 64, 'data.paired.max_target_len': ROW_TOKENS,
    'eval.translate.max_len': RESPOND_TOKENS, 'eval.translate.beam_size': 4,
    # 2 of the 4 epochs: what this arm's CPU time allowed (README).
    'train.num_epochs': 2,
}

TRANSFORMER = {
    'model.type': 'transformer', 'model.num_layers': 2,
    'model.embed_size': 176, 'model.tie_embeddings': True,
    'model.transformer.d_model': 176, 'model.transformer.num_heads': 4,
    'model.transformer.mlp_dim': 0,  # 4 * d_model
    # Rows reset the memory; decoding keeps the whole row in it.
    'model.transformer.memory_len': ROW_TOKENS,
    'model.transformer.max_len': 2 * ROW_TOKENS,
    # Rows padded to 4 widths, not 32: a Transformer step compiles slowly.
    'data.instruct.pad_multiple': 64,
    'train.learning_rate': 1e-3,
    # 2 of the 4 epochs: what this arm's CPU time allowed (README).
    'train.num_epochs': 2,
}


def sweep():
  return [
      ('stdlib_code_lm', PRETRAIN),
      ('lstm_scratch', {}),
      ('lstm_pretrained', {'train.init_from': '{arm:stdlib_code_lm}'}),
      ('gru_attention', GRU_ATTENTION),
      ('transformer', TRANSFORMER),
  ]


# --smoke: tiny models, a few steps, the first pairs only.
SMOKE = {
    'data.spm_vocab_size': 600, 'data.paired.spm_vocab_size': 400,
    'data.paired.max_pairs': 48, 'data.instruct.max_len': 48,
    'data.paired.max_target_len': 48, 'model.hidden_size': 16,
    'model.embed_size': 16, 'model.seq2seq.encoder_hidden': 8,
    'model.seq2seq.decoder_hidden': 16, 'model.transformer.memory_len': 48,
    'model.transformer.max_len': 96, 'data.instruct.pad_multiple': 8,
    'eval.respond.max_len': 8,
    'eval.respond.max_pairs': 8, 'eval.translate.max_len': 8,
    'eval.translate.beam_size': 2, 'generate.length': 8,
    'train.num_epochs': 1, 'train.warmup_steps': 0,
    'data.max_train_tokens': 20_000, 'data.max_eval_tokens': 2_000,
}
