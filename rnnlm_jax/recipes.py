"""Published recipes as importable configs, shared by experiments.

`experiments/<name>/config.py` files build on these (an ablation of the
Zaremba medium model starts from `zaremba('medium')`) instead of loading a
sibling experiment's file by path.
"""

import ml_collections

from rnnlm_jax import configs
from rnnlm_jax.data import paths

# Zaremba et al. (2014), Section 4.1: what the medium and large models change
# from the small one (dropout on the non-recurrent connections, init range,
# BPTT length, epochs, the epoch the decay starts, decay per epoch, clipping).
ZAREMBA_SIZES = {
    'small': {},
    'medium': {'model.hidden_size': 650, 'model.embed_size': 650,
               'model.dropout_embed': 0.5, 'model.dropout': 0.5,
               'model.dropout_output': 0.5, 'model.init_scale': 0.05,
               'train.seq_len': 35, 'train.num_epochs': 39,
               'train.decay_start_epoch': 6, 'train.decay_rate': 0.8},
    'large': {'model.hidden_size': 1500, 'model.embed_size': 1500,
              'model.dropout_embed': 0.65, 'model.dropout': 0.65,
              'model.dropout_output': 0.65, 'model.init_scale': 0.04,
              'train.seq_len': 35, 'train.num_epochs': 55,
              'train.decay_start_epoch': 14, 'train.decay_rate': 1 / 1.15,
              'train.clip_norm': 10.0},
}


def zaremba(size: str = 'small') -> ml_collections.ConfigDict:
  """Zaremba et al. (2014)'s PTB word-level LSTM of `size` (small | medium |
  large): 2 layers, uniform init, SGD lr 1 with step decay, loss summed over
  time (their TF code), test at batch 1."""
  if size not in ZAREMBA_SIZES:
    raise ValueError(f'size={size!r} is not one of {tuple(ZAREMBA_SIZES)}')
  c = configs.ptb_config()
  c.model.cell = 'lstm'
  c.model.num_layers = 2
  c.model.hidden_size = 200
  c.model.embed_size = 200
  c.model.init_scale = 0.1
  c.model.forget_bias = 0.0
  c.train.batch_size = 20
  c.train.seq_len = 20
  c.train.num_epochs = 13
  c.train.optimizer = 'sgd'
  c.train.learning_rate = 1.0
  c.train.schedule = 'step_decay'
  c.train.decay_start_epoch = 4
  c.train.decay_rate = 0.5
  c.train.clip_norm = 5.0
  c.train.loss_normalization = 'sequence'
  c.train.log_every_steps = 200
  c.eval.batch_size = 20  # validation during training (carried state)
  c.eval.test_batch_size = 1  # final test number, as the paper
  c.generate.prompt = 'the'
  c.generate.length = 50
  for key, value in ZAREMBA_SIZES[size].items():
    section, name = key.split('.')
    c[section][name] = value
  return c


def awd_lstm_ptb() -> ml_collections.ConfigDict:
  """AWD-LSTM on PTB (Merity et al. 2017) as salesforce/awd-lstm-lm's README
  command: main.py --batch_size 20 --data data/penn --dropouti 0.4
  --dropouth 0.25 --seed 141 --epoch 500, then finetune.py with the same
  flags; every other value main.py's default."""
  c = configs.ptb_config()
  c.seed = 141  # --seed 141

  c.model.cell = 'lstm'
  c.model.num_layers = 3  # nlayers
  c.model.hidden_size = 1150  # nhid
  c.model.embed_size = 400  # emsize
  c.model.tie_embeddings = True  # tied; the last layer then has 400 units
  c.model.dropout_kind = 'locked'
  c.model.dropout_output = 0.4  # dropout
  c.model.dropout = 0.25  # --dropouth 0.25
  c.model.dropout_embed = 0.4  # --dropouti 0.4
  c.model.dropout_embed_rows = 0.1  # dropoute
  c.model.weight_drop = 0.5  # wdrop
  c.model.init_scheme = 'pytorch'  # torch.nn.LSTM's defaults, as AWD keeps
  c.model.init_scale = 0.1  # AWD's initrange: the embedding
  c.model.two_biases = True  # torch.nn.LSTM's b_ih and b_hh
  c.model.forget_bias = 0.0

  c.train.batch_size = 20  # --batch_size 20
  c.train.seq_len = 70  # bptt
  c.train.variable_bptt = True
  c.train.bptt_p_full = 0.95
  c.train.bptt_std = 5.0
  c.train.bptt_bucket = 5
  c.train.num_epochs = 500  # --epoch 500
  c.train.optimizer = 'ntasgd'
  c.train.ntasgd_nonmono = 5  # nonmono
  c.train.learning_rate = 30.0  # lr
  c.train.schedule = 'constant'  # --when -1: never divided
  c.train.clip_norm = 0.25  # clip
  c.train.weight_decay = 1.2e-6  # wdecay
  c.train.ar_alpha = 2.0  # alpha
  c.train.tar_beta = 1.0  # beta
  c.train.loss_normalization = 'token'  # "averaged over all examples and timesteps"
  c.train.finetune_epochs = 500  # finetune.py --epoch 500; stops when NT-ASGD's rule triggers
  c.train.eval_every_steps = 0  # once per epoch: NT-ASGD's check interval L
  c.train.log_every_steps = 200

  c.eval.batch_size = 10  # the repo's eval_batch_size
  c.eval.test_batch_size = 1

  c.generate.prompt = 'the'
  c.generate.length = 50
  return c


def multi30k(attention: str = 'additive') -> ml_collections.ConfigDict:
  """Multi30k task 1 De->En at bentrevett/pytorch-seq2seq's shape:
  embeddings 256, a bidirectional GRU encoder of 512, a GRU decoder of 512,
  dropout 0.5, Adam, clipping at 1, lower-cased words of min count 2; full
  teacher forcing, source padding masked, the best checkpoint by validation
  loss, early stopping."""
  c = configs.base_config()
  c.task = 'seq2seq'
  c.seed = 1234
  c.data.path = str(paths.dataset_path('multi30k'))
  c.data.lowercase = True
  c.data.vocab_min_count = 2
  c.data.paired.source_lang, c.data.paired.target_lang = 'de', 'en'
  c.model.type = 'seq2seq'
  c.model.embed_size = 256
  c.model.dropout = 0.5
  c.model.init_scale = 0.0
  c.model.seq2seq.encoder_cell = c.model.seq2seq.decoder_cell = 'gru'
  c.model.seq2seq.encoder_hidden = c.model.seq2seq.decoder_hidden = 512
  c.model.seq2seq.bidirectional = True
  c.model.seq2seq.attention = attention
  c.train.batch_size = 128
  c.train.seq_len = 32  # only sizes the init; batches are bucketed
  c.train.num_epochs = 10
  c.train.optimizer = 'adam'
  c.train.learning_rate = 1e-3
  c.train.schedule = 'constant'
  c.train.clip_norm = 1.0
  c.train.loss_normalization = 'token'
  c.train.early_stopping_patience = 3
  c.train.log_every_steps = 50
  c.eval.batch_size = 128
  c.eval.test_batch_size = 128
  return c


# --smoke overrides for the multi30k() experiments: a tiny model on the
# first pairs, short decoding.
MULTI30K_SMOKE = {
    'model.embed_size': 8, 'model.seq2seq.encoder_hidden': 8,
    'model.seq2seq.decoder_hidden': 16, 'train.batch_size': 4,
    'eval.batch_size': 8, 'eval.test_batch_size': 8,
    'eval.translate.max_len': 6, 'eval.translate.beam_size': 2,
    'data.paired.max_pairs': 64}


def multi30k_tuned() -> ml_collections.ConfigDict:
  """multi30k('additive') with label smoothing 0.1, the learning rate halved
  each epoch after the 5th, the best checkpoint by greedy lower-cased
  validation BLEU and the last 4 epochs kept for checkpoint averaging."""
  c = multi30k('additive')
  c.train.label_smoothing = 0.1
  c.train.schedule = 'step_decay'
  c.train.decay_start_epoch = 5
  c.train.decay_rate = 0.5
  c.train.best_metric = 'bleu_lowercase'
  c.train.keep_checkpoints = 4
  return c


# bentrevett/pytorch-seq2seq's Transformer (notebook 6) as overrides of
# multi30k(): 3 encoder + 3 decoder layers, D 256, 8 heads, MLP 512, dropout
# 0.1 (embeddings, residual branches, attention weights), learned positions,
# Adam at 5e-4; the rest (data, batch 128, clipping 1, decoding) as the GRU's.
MULTI30K_TRANSFORMER = {
    'model.type': 'transformer_seq2seq',
    'model.num_layers': 3,  # encoder layers, and as many decoder layers
    'model.transformer.d_model': 256,
    'model.transformer.num_heads': 8,
    'model.transformer.mlp_dim': 512,
    'model.transformer.position': 'learned',
    # The tutorial's max_length; the longest Multi30k sentence is 45 tokens
    # with its <eos>, eval.translate.max_len 80.
    'model.transformer.max_len': 100,
    'model.transformer.attention_dropout': 0.1,
    'model.dropout_embed': 0.1,
    'model.dropout': 0.1,
    'model.dropout_output': 0.0,
    'train.learning_rate': 5e-4,
}


def multi30k_transformer() -> ml_collections.ConfigDict:
  """multi30k() with the Transformer encoder-decoder of MULTI30K_TRANSFORMER."""
  c = multi30k()
  c.update_from_flattened_dict(MULTI30K_TRANSFORMER)
  return c
