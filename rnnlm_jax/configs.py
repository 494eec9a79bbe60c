"""The base configuration: every key an experiment may set, with its default.

Experiment files (`experiments/<name>/config.py`) start from `base_config()` and
override what they need. The returned ConfigDict is *locked*: assigning a key
that is not declared here is an error, so a typo on the command line
(`--config.train.lerning_rate=1`) fails loudly instead of being ignored.
"""

import ml_collections

from rnnlm_jax.data import paths

# Penn Treebank (Mikolov's ptb.{train,valid,test}.txt) under the data root
# ($RNNLM_JAX_DATA, else ../shared/data beside the checkout; see
# rnnlm_jax/data/paths.py); --config.data.path=/path/to/ptb points elsewhere.
DEFAULT_PTB = paths.dataset_path('ptb')


def ptb_config() -> ml_collections.ConfigDict:
  """base_config() reading word-level PTB from DEFAULT_PTB."""
  c = base_config()
  c.data.source = 'files'
  c.data.path = DEFAULT_PTB
  c.data.level = 'word'
  return c


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  # a name of rnnlm_jax.training.tasks.TASKS: 'lm' (language modelling) |
  # 'seq2seq' (sentence pairs: an encoder-decoder) | 'instruct' (instruction /
  # response pairs for the decoder-only LMs, loss on the response only)
  c.task = 'lm'

  # --- data -------------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  # a name of rnnlm_jax.data.SOURCES: 'stdlib' (embedded, no download) |
  # 'files' | 'tfds' | 'synthetic'; each reads its own sub-dict below
  c.data.source = 'stdlib'
  # 'word' | 'char' | 'code_bpe' (SentencePiece BPE pieces for code, the
  # model trained on the train split, spm_vocab_size pieces, saved in the
  # workdir as spm.model; in-memory only: no cache_dir; lowercase=False);
  # task='instruct': 'char' | 'code_bpe'
  c.data.level = 'char'
  c.data.spm_vocab_size = 8000
  # files: a directory holding {train,valid,test} files (e.g. ptb.train.txt),
  # or a single text file that is split by `split_fractions`.
  c.data.path = ''
  c.data.split_fractions = (0.9, 0.05, 0.05)
  # tfds: dataset name (e.g. 'tiny_shakespeare', 'lm1b'), its data_dir,
  # the text feature and the split names used for train/valid/test.
  c.data.tfds = ml_collections.ConfigDict(dict(
      name='', data_dir='', text_key='text',
      splits=('train', 'validation', 'test')))
  # vocabulary, built from the train split
  c.data.vocab_max_size = 0  # 0: no limit
  c.data.vocab_min_count = 1
  c.data.lowercase = False
  # caps on tokens per split (0: no cap); keep CPU runs short
  c.data.max_train_tokens = 0
  c.data.max_eval_tokens = 0
  # corpus cache: a dir (gs:// through a local mirror, data/cache_mirror.py);
  # text tokenized once, ids memory-mapped ('' = off);
  # task='seq2seq': the encoded pairs (data/paired_cache.py); not 'instruct'
  c.data.cache_dir = ''
  # 'stream': contiguous rows, hidden state carried across windows (TBPTT)
  # 'sentence': one padded, masked sentence per row; state reset each batch
  c.data.mode = 'stream'
  # synthetic: a random order-k Markov chain with Dirichlet(alpha) transitions
  c.data.synthetic = ml_collections.ConfigDict(dict(
      vocab_size=50, order=2, alpha=0.1, tokens=(200_000, 20_000, 20_000)))

  # task='seq2seq': sentence pairs (rnnlm_jax.data.paired), with data.path,
  # data.lowercase, data.vocab_min_count and data.vocab_max_size. format:
  # 'files' (<path>/<split>.<lang>[.gz], one sentence per line; splits
  # train / val|valid|dev / test*) | 'jsonl' (source_key / target_key, dotted
  # keys allowed) | 'tfds' (a translation dataset, e.g. wmt14_translate/de-en).
  # tokenizer: 'punct' (punctuation split) | 'sentencepiece' (trained on the
  # train split, spm_vocab_size pieces, saved in the workdir). Pairs longer
  # than max_source_len / max_target_len tokens (0: no limit) in the train
  # split are cut ('truncate') or left out ('drop'), counted in the log.
  # max_pairs > 0: only the first pairs of each split (smoke runs).
  # spm_model_type: SentencePiece 'unigram' | 'bpe' | 'code_bpe' (source code
  # kept byte for byte: whitespace, newlines; needs data.lowercase=False).
  # format 'code_instructions' (rnnlm_jax/data/code_instructions.py):
  # docstring first paragraph -> function source without the docstring, from
  # the stdlib (code_stdlib) and the installed packages named in
  # code_packages, e.g. ('numpy',); split by file as the stdlib LM corpus;
  # with_signature prefixes the instruction with 'def f(args) -> ret:';
  # pairs outside the [min, max] characters (0 max: no limit) are left out.
  # Use with tokenizer='sentencepiece', spm_model_type='code_bpe'.
  # format 'instructions' (rnnlm_jax/data/instruction_files.py): Alpaca /
  # Dolly JSON or JSONL files {stem}.jsonl|.json in data.path; record_format
  # 'alpaca' (instruction, input, output) | 'dolly' (instruction, context,
  # response); instruction_key / input_key / output_key override its keys.
  c.data.paired = ml_collections.ConfigDict(dict(
      format='files', source_lang='de', target_lang='en', source_key='',
      target_key='', tfds_name='', tfds_data_dir='',
      tfds_splits=('train', 'validation', 'test'), tokenizer='punct',
      spm_vocab_size=8000, spm_model_type='unigram', max_source_len=0,
      max_target_len=0, length_policy='truncate', max_pairs=0,
      code_stdlib=True, code_packages=(), with_signature=False,
      min_instruction_chars=8, max_instruction_chars=1000,
      min_response_chars=16, max_response_chars=2000,
      record_format='alpaca', instruction_key='', input_key='',
      output_key=''))

  # task='instruct' (rnnlm_jax/data/instruct.py): (instruction, response)
  # pairs read as data.paired says (format 'jsonl' with source_key /
  # target_key naming the two fields, or 'files'; max_pairs caps each
  # split). One row per pair: '<eos>' + template (its '{instruction}'
  # replaced) + response + '<eos>', one vocabulary (data.level 'char' or
  # 'code_bpe'); the loss and the reported ppl cover the response tokens and
  # the final '<eos>' only. max_len: model positions per row (0: no limit;
  # longer responses are cut and lose their '<eos>', counted); rows are
  # padded to a multiple of pad_multiple, bucketed by length, the state
  # reset every batch (train.seq_len is not used).
  c.data.instruct = ml_collections.ConfigDict(dict(
      template='### Instruction:\n{instruction}\n### Response:\n',
      max_len=256, pad_multiple=8))

  # --- model ------------------------------------------------------------
  c.model = ml_collections.ConfigDict()
  # 'rnn' (RecurrentLM, the keys below) | 'transformer' (TransformerLM: a
  # causal pre-LayerNorm self-attention LM; uses num_layers, tie_embeddings,
  # the three dropout rates, dtype and the transformer keys further down)
  # 'xlstm' (XLSTMLM, rnnlm_jax/models/xlstm_blocks.py: embedding -> mLSTM /
  # sLSTM / LSTM blocks by model.xlstm.pattern -> LayerNorm -> logits; D is
  # hidden_size; uses tie_embeddings, the three dropout rates, forget_bias,
  # dtype, unroll, recurrent_backward; not num_layers, embed_size, init_scale)
  # | 'seq2seq' (model.seq2seq below) | 'transformer_seq2seq'
  # (TransformerSeq2Seq, rnnlm_jax/models/transformer_seq2seq.py: a pre-LN
  # Transformer encoder-decoder of num_layers encoder and num_layers decoder
  # layers; uses tie_embeddings, the three dropout rates, dtype and the
  # model.transformer keys except memory_len). The two encoder-decoders are
  # for task='seq2seq' and only they are.
  c.model.type = 'rnn'  # a name of rnnlm_jax.models.MODEL_TYPES
  # a name of rnnlm_jax.models.CELLS: 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu'
  # | 'mingru' | 'minlstm' | 'lru' | 'rglru' | 'slstm' | 'mlstm'
  c.model.cell = 'lstm'
  c.model.num_layers = 2
  c.model.hidden_size = 200
  c.model.embed_size = 200
  c.model.tie_embeddings = False
  c.model.dropout_embed = 0.0  # on the embedded inputs
  c.model.dropout = 0.0  # between recurrent layers
  c.model.dropout_output = 0.0  # on the last layer's outputs
  # rnn only. AWD-LSTM (Merity et al. 2017) regularizers, all off by default.
  # 'standard': a fresh dropout mask per time step (Zaremba); 'locked': one
  # mask per sequence shared over time (variational dropout; AWD's dropouti /
  # dropouth / dropout = dropout_embed / dropout / dropout_output).
  c.model.dropout_kind = 'standard'
  c.model.dropout_embed_rows = 0.0  # drop whole words of the embedding (dropoute)
  c.model.weight_drop = 0.0  # DropConnect on each layer's kernel_hh (wdrop)
  # uniform(-s, s) init for every weight (Zaremba); 0 uses flax defaults
  c.model.init_scale = 0.1
  c.model.forget_bias = 0.0  # LSTM forget-gate bias at init
  # rnn only. 'uniform': every param ~ U(+-init_scale) as above; 'pytorch'
  # (AWD-LSTM): recurrent weights and biases ~ U(+-1/sqrt(H)) per layer,
  # embedding (and untied output kernel) ~ U(+-init_scale), output bias 0.
  c.model.init_scheme = 'uniform'
  # rnn only. PyTorch's two recurrent biases b_ih and b_hh (True) instead of
  # one: same function, but an SGD step moves their sum twice as far and both
  # count in the clipped gradient norm (AWD-LSTM trains with two).
  c.model.two_biases = False
  c.model.dtype = 'float32'  # matmul dtype: 'float32' | 'bfloat16'
  c.model.unroll = 0  # lax.scan unroll; 0: 8 on GPU/TPU, 1 on CPU
  # rnn only. How the recurrence's backward pass gets d(kernel_hh):
  # 'after_loop' (one [T*B, H]^T @ [T*B, G*H] matmul after the backward scan,
  # as cuDNN; rnnlm_jax/models/recurrence.py; docs/performance.md) |
  # 'autodiff' (lax.scan's own, which
  # adds into a [H, G*H] accumulator at every step). Same gradients.
  c.model.recurrent_backward = 'after_loop'
  # model.type='transformer' only. dropout_embed: on embedding + position;
  # dropout: on each attention/MLP output before the residual add;
  # dropout_output: after the final LayerNorm. Init: normal(0.02), not
  # init_scale. memory_len: tokens of the previous windows kept in the carry
  # and attended to (the counterpart of the carried hidden state; also what
  # sampling sees of the past; 0: every window stands alone). max_len:
  # learned positions, memory_len + seq_len must fit. mlp_dim 0: 4 * d_model.
  # model.type='transformer_seq2seq': the same keys but memory_len; max_len:
  # the positions of a source and of a target (padded) and the decoder's
  # key/value cache, so eval.translate.max_len must fit in it too.
  c.model.transformer = ml_collections.ConfigDict(dict(
      d_model=256, num_heads=4, mlp_dim=0, position='learned',
      memory_len=64, max_len=512, attention_dropout=0.0))

  # model.type='seq2seq' (models.TranslationModel, task='seq2seq'): the
  # encoder (embedding -> encoder_layers of encoder_cell, bidirectional: the
  # backward direction reversed within each true length) and the decoder
  # (decoder_cell with attention 'none' (Cho et al. 2014) | 'additive'
  # (Bahdanau) | 'dot' | 'general' (Luong); source padding masked out).
  # Uses model.embed_size, dropout (embeddings, between encoder layers),
  # tie_embeddings, init_scale, dtype and unroll. teacher_forcing < 1:
  # scheduled sampling, the decoder's own argmax fed with prob 1 - it.
  c.model.seq2seq = ml_collections.ConfigDict(dict(
      encoder_cell='gru', encoder_hidden=512, bidirectional=True,
      encoder_layers=1, decoder_cell='gru', decoder_hidden=512,
      attention='additive', attention_size=0, teacher_forcing=1.0))

  # The own settings of the cells that bring their own layer (model.cell =
  # the sub-dict's name; models/linear_cells.py). scan: 'auto' (sequential on
  # CPU, associative on accelerators) | 'associative' | 'sequential'.
  c.model.mingru = ml_collections.ConfigDict(dict(scan='auto'))
  c.model.minlstm = ml_collections.ConfigDict(dict(scan='auto'))
  c.model.lru = ml_collections.ConfigDict(dict(
      scan='auto', r_min=0.9, r_max=0.999, max_phase=2 * 3.141592653589793,
      glu=True, phase='log'))
  c.model.rglru = ml_collections.ConfigDict(dict(
      scan='auto', num_heads=4, min_rad=0.9, max_rad=0.999, input_norm=False))

  # The xLSTM cells' own options (model.cell='slstm' | 'mlstm'): heads divide
  # hidden_size; the mLSTM trains chunk_size steps at a time in the parallel
  # form ('chunkwise') or step by step ('recurrent'); T=1 is always stepwise.
  c.model.slstm = ml_collections.ConfigDict({'num_heads': 4})
  c.model.mlstm = ml_collections.ConfigDict(
      {'num_heads': 4, 'chunk_size': 64, 'backend': 'chunkwise'})
  # model.type='xlstm': blocks by letter (m: mLSTM, s: sLSTM, l: LSTM; the
  # paper's xLSTM[7:1] is 'mmmmmmms'), heads, chunking, the causal conv width
  # of the mLSTM blocks and the up-projection factors (mLSTM before, sLSTM/
  # LSTM after the cell).
  c.model.xlstm = ml_collections.ConfigDict({
      'pattern': 'mmsm', 'num_heads': 4, 'slstm_heads': 4, 'chunk_size': 64,
      'backend': 'chunkwise', 'conv_width': 4, 'proj_factor_m': 2.0,
      'proj_factor_s': 4.0 / 3.0})

  # model.type='ngram': an interpolated modified Kneser-Ney n-gram LM of this
  # order (2..7), trained by counting the train split (train/counting.py).
  c.model.ngram = ml_collections.ConfigDict(dict(order=5))

  # --- training ---------------------------------------------------------
  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 20  # global batch (all devices together)
  c.train.seq_len = 20  # BPTT window length T
  c.train.num_epochs = 13
  c.train.num_steps = 0  # > 0: stop after this many steps (overrides epochs)
  # a name of rnnlm_jax.training.optim.OPTIMIZERS: 'sgd' | 'momentum' | 'adam' |
  # 'adamw' | 'ntasgd' (AWD-LSTM: SGD, then averaged SGD once validation
  # stalls; evaluation uses the averaged params). The optax keyword arguments
  # of each are in train.<name> below (e.g. train.adam.b2).
  c.train.optimizer = 'sgd'
  c.train.learning_rate = 1.0
  c.train.weight_decay = 0.0  # adamw: decoupled; others: L2 on the gradient
  c.train.momentum = ml_collections.ConfigDict(dict(momentum=0.9, nesterov=False))
  c.train.adam = ml_collections.ConfigDict(dict(b1=0.9, b2=0.999, eps=1e-8))
  c.train.adamw = ml_collections.ConfigDict(dict(b1=0.9, b2=0.999, eps=1e-8))
  # a name of optim.SCHEDULES: 'constant' | 'step_decay' (Zaremba) | 'cosine' | 'linear'
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
  # what picks the best checkpoint (and counts as a gain for early stopping):
  # 'loss' (validation NLL, lower is better) or, task='seq2seq', greedy
  # validation 'bleu' | 'bleu_lowercase' | 'chrf' (higher is better).
  c.train.best_metric = 'loss'
  c.train.progress_bar = True
  # Steps with a NaN/inf loss or gradient norm are skipped (params unchanged);
  # this many in a row stop the run with an error.
  c.train.max_nonfinite_steps = 10
  # AWD-LSTM activation regularization (rnn only), added to the training loss
  # only: ar_alpha * mean(h^2) of the last layer's dropped outputs (AWD: 2) and
  # tar_beta * mean((h_t - h_{t-1})^2) of its undropped outputs (AWD: 1).
  # Their scale assumes loss_normalization='token', as AWD's loss.
  c.train.ar_alpha = 0.0
  c.train.tar_beta = 0.0
  # eps of label-smoothed cross-entropy (Szegedy et al. 2016): the training
  # loss only; validation, perplexity and the reported loss stay the NLL.
  c.train.label_smoothing = 0.0
  # optimizer='ntasgd': start averaging at the first validation check whose
  # loss is worse than the best of the checks older than the last n (AWD: 5).
  c.train.ntasgd_nonmono = 5
  # Variable BPTT (AWD-LSTM; data.mode='stream' only): each window's length
  # ~ N(seq_len, bptt_std) with probability bptt_p_full, else
  # N(seq_len / 2, bptt_std), clipped to +-2 std and rounded to a multiple of
  # bptt_bucket (few lengths, so few compilations); the step's learning rate
  # is scaled by length / seq_len. An epoch keeps its number of steps.
  c.train.variable_bptt = False
  c.train.bptt_p_full = 0.95
  c.train.bptt_std = 5.0
  c.train.bptt_bucket = 5
  # AWD-LSTM's fine-tuning stage (optimizer='ntasgd' only): after training,
  # averaged SGD restarts from the best (averaged) params, averaging from the
  # first update, for at most finetune_epochs epochs (or finetune_steps > 0
  # steps), stopping at the first validation check that NT-ASGD's rule
  # triggers on. Runs in <workdir>/finetune; both 0: no fine-tuning.
  c.train.finetune_epochs = 0
  c.train.finetune_steps = 0
  # Another run's workdir (task 'lm' or 'instruct', same data.level and
  # model): a fresh run starts from its best params (else latest) with a new
  # optimizer state, and encodes with its vocabulary (vocab.json, spm.*
  # copied into this workdir); rnnlm_jax/training/init_from.py. '': off.
  c.train.init_from = ''

  # --- evaluation -------------------------------------------------------
  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 10  # for validation during training
  c.eval.test_batch_size = 1  # for the final test number (as the papers do)
  c.eval.seq_len = 0  # 0: same as train.seq_len
  # How the FINAL valid/test numbers (and the eval command) score a stream, a
  # name of rnnlm_jax.training.scoring.METHODS; validation during training is
  # always 'static'. 'dynamic' (Krause et al. 2018): after scoring each
  # window, one SGD step on it, lr on the mean token NLL, plus decay *
  # (trained - current) params. 'cache' (Grave et al. 2017 neural cache
  # pointer, rnn only): the last `size` last-layer states per row,
  # p = (1 - weight) p_model + weight p_cache, p_cache from
  # softmax(theta * h_t . h_i); AWD PTB: size 500, theta 1.0, weight 0.1.
  c.eval.method = 'static'
  c.eval.dynamic = ml_collections.ConfigDict(dict(lr=0.1, decay=0.0))
  c.eval.cache = ml_collections.ConfigDict(dict(size=500, theta=1.0, weight=0.1))
  # 'ensemble' (train/ensembles.py): this run's model linearly interpolated
  # with the runs in `members` (comma-separated workdirs, same vocabulary;
  # neural or n-gram), `weights` one per model, this run first, or '' to fit
  # them by EM on the validation split. task='seq2seq': the translate command
  # decodes with this run and the `members` as one model, each step's
  # distribution the mean of theirs (decoding.Ensemble; weights unused).
  c.eval.ensemble = ml_collections.ConfigDict(dict(members='', weights=''))

  # task='seq2seq': decoding for BLEU (final results, translate command):
  # beam_size (1: greedy; greedy is always reported too), GNMT length
  # penalty alpha ((5 + len) / 6) ** alpha, max_len output tokens.
  c.eval.translate = ml_collections.ConfigDict(dict(
      beam_size=5, length_penalty=1.0, max_len=80, batch_size=128,
      # greedy BLEU / chrF on valid at every evaluation (also on whenever
      # train.best_metric is one of them)
      valid_bleu=False))
  # task='instruct': responses decoded at the end of a run on `splits`
  # (max_pairs > 0: the first pairs only) by each of `methods` ('greedy' |
  # 'beam' | 'top_p'), at most max_len tokens, scored by exact match, chrF,
  # BLEU and the fraction that parses as Python (training/instruct_eval.py).
  c.eval.respond = ml_collections.ConfigDict(dict(
      splits=('test',), methods=('greedy',), max_len=512, max_pairs=0,
      batch_size=64, beam_size=4, length_penalty=0.6, top_p=0.9,
      temperature=1.0, seed=0))

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


# What task='seq2seq' scores on valid at each evaluation (greedy decoding)
# when eval.translate.valid_bleu is on; train.best_metric may name one.
SEQ2SEQ_VALID_METRICS = ('bleu', 'bleu_lowercase', 'chrf')
