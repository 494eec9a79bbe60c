"""The base configuration: every key an experiment may set, with its default.

Experiment files (`experiments/<name>/config.py`) start from `base_config()` and
override what they need. The returned ConfigDict is *locked*: assigning a key
that is not declared here is an error, so a typo on the command line
(`--config.train.lerning_rate=1`) fails loudly instead of being ignored.
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  # --- data -------------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  # 'stdlib' (embedded, no download) | 'files' | 'tfds' | 'synthetic'
  c.data.source = 'stdlib'
  c.data.level = 'char'  # 'word' | 'char'
  # files: a directory holding {train,valid,test} files (e.g. ptb.train.txt),
  # or a single text file that is split by `split_fractions`.
  c.data.path = ''
  c.data.split_fractions = (0.9, 0.05, 0.05)
  # tfds: dataset name (e.g. 'tiny_shakespeare', 'lm1b'), its data_dir,
  # the text feature and the split names used for train/valid/test.
  c.data.tfds_name = ''
  c.data.tfds_data_dir = ''
  c.data.tfds_text_key = 'text'
  c.data.tfds_splits = ('train', 'validation', 'test')
  # vocabulary, built from the train split
  c.data.vocab_max_size = 0  # 0: no limit
  c.data.vocab_min_count = 1
  c.data.lowercase = False
  # caps on tokens per split (0: no cap); keep CPU runs short
  c.data.max_train_tokens = 0
  c.data.max_eval_tokens = 0
  # 'stream': contiguous rows, hidden state carried across windows (TBPTT)
  # 'sentence': one padded, masked sentence per row; state reset each batch
  c.data.mode = 'stream'
  # synthetic: a random order-k Markov chain with Dirichlet(alpha) transitions
  c.data.synthetic_vocab_size = 50
  c.data.synthetic_order = 2
  c.data.synthetic_alpha = 0.1
  c.data.synthetic_tokens = (200_000, 20_000, 20_000)

  # --- model ------------------------------------------------------------
  c.model = ml_collections.ConfigDict()
  # 'rnn' (RecurrentLM, the keys below) | 'transformer' (TransformerLM: a
  # causal pre-LayerNorm self-attention LM; uses num_layers, tie_embeddings,
  # the three dropout rates, dtype and the transformer keys further down)
  c.model.type = 'rnn'
  c.model.cell = 'lstm'  # 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu'
  c.model.num_layers = 2
  c.model.hidden_size = 200
  c.model.embed_size = 200
  c.model.tie_embeddings = False
  c.model.dropout_embed = 0.0  # on the embedded inputs
  c.model.dropout = 0.0  # between recurrent layers
  c.model.dropout_output = 0.0  # on the last layer's outputs
  # uniform(-s, s) init for every weight (Zaremba); 0 uses flax defaults
  c.model.init_scale = 0.1
  c.model.forget_bias = 0.0  # LSTM forget-gate bias at init
  c.model.dtype = 'float32'  # matmul dtype: 'float32' | 'bfloat16'
  c.model.unroll = 0  # lax.scan unroll; 0: 8 on GPU/TPU, 1 on CPU
  # transformer only (model.type='transformer'). dropout_embed: on embedding
  # + position; dropout: on each attention/MLP output before the residual add;
  # dropout_output: after the final LayerNorm. Init: normal(0.02), not init_scale.
  c.model.d_model = 256
  c.model.num_heads = 4  # must divide d_model
  c.model.mlp_dim = 0  # feed-forward width; 0: 4 * d_model
  c.model.position = 'learned'  # 'learned' | 'sinusoidal'
  # tokens of the previous windows kept in the carry and attended to (the
  # transformer's counterpart of the carried hidden state; also what sampling
  # sees of the past). 0: every window (and sampled token) stands alone.
  c.model.memory_len = 64
  c.model.max_len = 512  # learned positions: memory_len + seq_len must fit
  c.model.attention_dropout = 0.0  # on the attention weights

  # --- training ---------------------------------------------------------
  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 20  # global batch (all devices together)
  c.train.seq_len = 20  # BPTT window length T
  c.train.num_epochs = 13
  c.train.num_steps = 0  # > 0: stop after this many steps (overrides epochs)
  c.train.optimizer = 'sgd'  # 'sgd' | 'momentum' | 'adam' | 'adamw'
  c.train.learning_rate = 1.0
  c.train.momentum = 0.9
  c.train.weight_decay = 0.0
  # 'constant' | 'step_decay' (Zaremba) | 'cosine' | 'linear'
  c.train.schedule = 'step_decay'
  c.train.decay_start_epoch = 4  # step_decay: epochs at the full rate
  c.train.decay_rate = 0.5  # step_decay: factor per epoch after that
  c.train.warmup_steps = 0
  c.train.clip_norm = 5.0  # global-norm clipping; 0 disables
  # 'sequence': loss summed over time, averaged over rows (Zaremba's TF code;
  # matters with plain SGD at lr 1); 'token': averaged over tokens.
  c.train.loss_normalization = 'sequence'
  c.train.log_every_steps = 50
  c.train.eval_every_steps = 0  # 0: evaluate at the end of each epoch
  c.train.checkpoint_every_steps = 0  # 0: at each evaluation
  c.train.keep_checkpoints = 2  # latest N (the best one is kept apart)
  c.train.early_stopping_patience = 0  # evaluations without gain; 0: off
  c.train.progress_bar = True
  # Steps with a NaN/inf loss or gradient norm are skipped (params unchanged);
  # this many in a row stop the run with an error.
  c.train.max_nonfinite_steps = 10

  # --- evaluation -------------------------------------------------------
  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 10  # for validation during training
  c.eval.test_batch_size = 1  # for the final test number (as the papers do)
  c.eval.seq_len = 0  # 0: same as train.seq_len

  # --- sampling ---------------------------------------------------------
  c.generate = ml_collections.ConfigDict()
  c.generate.prompt = ''
  c.generate.length = 200
  c.generate.temperature = 1.0
  c.generate.top_k = 0
  c.generate.top_p = 1.0
  c.generate.seed = 0

  c.lock()
  return c


def _check(ok: bool, key: str, value, requirement: str) -> None:
  if not ok:
    raise ValueError(f'{key}={value!r} is invalid: {requirement}')


def _one_of(key: str, value, choices) -> None:
  _check(value in choices, key, value, f'must be one of {tuple(choices)}')


def validate(config: ml_collections.ConfigDict) -> None:
  """One-line ValueError naming the first bad train/eval/generate value.

  Data and model values are checked where they are used (rnnlm_jax.data,
  rnnlm_jax.models.make_model), by the code that knows their meaning.
  """
  t, e, g = config.train, config.eval, config.generate
  for key in ('batch_size', 'seq_len', 'log_every_steps', 'keep_checkpoints',
              'max_nonfinite_steps'):
    _check(t[key] > 0, f'train.{key}', t[key], 'must be > 0')
  for key in ('num_epochs', 'num_steps', 'eval_every_steps', 'warmup_steps',
              'checkpoint_every_steps', 'early_stopping_patience',
              'decay_start_epoch'):
    _check(t[key] >= 0, f'train.{key}', t[key], 'must be >= 0')
  _check(t.num_epochs > 0 or t.num_steps > 0, 'train.num_epochs', t.num_epochs,
         'set train.num_epochs or train.num_steps > 0')
  _check(t.learning_rate > 0, 'train.learning_rate', t.learning_rate, 'must be > 0')
  _check(t.clip_norm >= 0, 'train.clip_norm', t.clip_norm, 'must be >= 0 (0: off)')
  _check(t.weight_decay >= 0, 'train.weight_decay', t.weight_decay, 'must be >= 0')
  _check(0 < t.decay_rate <= 1, 'train.decay_rate', t.decay_rate, 'must be in (0, 1]')
  _one_of('train.optimizer', t.optimizer, ('sgd', 'momentum', 'adam', 'adamw'))
  _one_of('train.schedule', t.schedule, ('constant', 'step_decay', 'cosine', 'linear'))
  _one_of('train.loss_normalization', t.loss_normalization, ('token', 'sequence'))
  for key in ('batch_size', 'test_batch_size'):
    _check(e[key] > 0, f'eval.{key}', e[key], 'must be > 0')
  _check(e.seq_len >= 0, 'eval.seq_len', e.seq_len, 'must be >= 0 (0: train.seq_len)')
  _check(g.length > 0, 'generate.length', g.length, 'must be > 0')
  _check(g.temperature >= 0, 'generate.temperature', g.temperature,
         'must be >= 0 (0: greedy)')
  _check(g.top_k >= 0, 'generate.top_k', g.top_k, 'must be >= 0 (0: off)')
  _check(0 < g.top_p <= 1, 'generate.top_p', g.top_p, 'must be in (0, 1]')
