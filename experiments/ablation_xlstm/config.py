"""Ablation: LSTM vs sLSTM vs mLSTM vs xLSTM at one parameter budget.

Six models, each at (within 2%) the 4,651,600 parameters of the Zaremba small
LSTM (2 x 200, embedding and softmax included), on two corpora: PTB word level
(V = 10,000) and the stdlib character corpus (Python's standard library
source, V = 219 on Python 3.11). Every model has an untied embedding and
softmax of width D; the size column is D (or H for the classic LSTM):

  arm        model                                       D PTB  params    D char  params
  lstm       the classic 2-layer LSTM (RecurrentLM)      200  4,651,600    525  4,644,369
  lstm_block 8 LSTM blocks: residual pre-LayerNorm,      139  4,652,878    217  4,628,395
             gated MLP after the cell (the sLSTM
             block's layout), pattern 'llllllll'
  slstm      8 sLSTM blocks, xLSTM[0:1]                  152  4,725,952    252  4,701,531
  mlstm      8 mLSTM blocks, xLSTM[1:0]                  122  4,656,068    176  4,628,379
  xlstm11    'msmsmsms', xLSTM[1:1]                      132  4,570,632    204  4,644,107
  xlstm71    'mmmmmmms', xLSTM[7:1]                      124  4,622,608    184  4,735,699

(SIZES below holds the solved sizes; tests/test_xlstm.py checks the budget on
the initialized models.) One recipe for all arms (not Zaremba's SGD at lr 1,
which was tuned for the classic LSTM): AdamW lr 2e-3,
weight decay 0.1, 200 warmup steps then cosine, clip 1, token-mean loss,
dropout 0.1, batch 32, 64-step windows (mLSTM chunks of 32), 10 epochs on
PTB and 1 epoch of the stdlib corpus's first 4M training characters (valid
and test: their first 200k). One seed per arm.

  python -m rnnlm_jax.experiment sweep experiments/ablation_xlstm
  python -m rnnlm_jax.experiment sweep experiments/ablation_xlstm --smoke  # minutes on CPU

Results: experiments/ablation_xlstm/results.md (+ learning_curves.png),
written by the sweep. On a 2-vCPU CPU an arm takes 26-61 min on PTB and
14-40 min on the characters. Expected (one seed): PTB test perplexity
LSTM 121, LSTM blocks 92, sLSTM 93, xLSTM[1:1] 95, xLSTM[7:1] 97, mLSTM
108; test bits/char 1.80-1.82 for the LSTM, LSTM blocks and sLSTM,
2.13-2.18 with mLSTM blocks. README.md has the per-arm details.
"""

from rnnlm_jax import configs

BUDGET = 4_651_600  # the zaremba_small LSTM on PTB
CORPORA = {
    'ptb': {'data.source': 'files', 'data.path': configs.DEFAULT_PTB,
            'data.level': 'word', 'train.num_epochs': 10},
    # the first 4M training characters (one epoch) and 200k of valid / test:
    # the whole stdlib (~28M characters) is ~3 h per arm on 2 CPU cores
    'char': {'data.source': 'stdlib', 'data.path': '', 'data.level': 'char',
             'data.max_train_tokens': 4_000_000,
             'data.max_eval_tokens': 200_000, 'train.num_epochs': 1},
}
# arm -> the model's keys (the size, model.hidden_size, comes from SIZES)
MODELS = {
    'lstm': {'model.type': 'rnn', 'model.cell': 'lstm', 'model.num_layers': 2},
    'lstm_block': {'model.type': 'xlstm', 'model.xlstm.pattern': 'l' * 8},
    'slstm': {'model.type': 'xlstm', 'model.xlstm.pattern': 's' * 8},
    'mlstm': {'model.type': 'xlstm', 'model.xlstm.pattern': 'm' * 8},
    'xlstm11': {'model.type': 'xlstm', 'model.xlstm.pattern': 'ms' * 4},
    'xlstm71': {'model.type': 'xlstm', 'model.xlstm.pattern': 'm' * 7 + 's'},
}
# (corpus, arm) -> hidden size giving BUDGET parameters (within 2%).
SIZES = {
    ('ptb', 'lstm'): 200, ('ptb', 'lstm_block'): 139, ('ptb', 'slstm'): 152,
    ('ptb', 'mlstm'): 122, ('ptb', 'xlstm11'): 132, ('ptb', 'xlstm71'): 124,
    ('char', 'lstm'): 525, ('char', 'lstm_block'): 217, ('char', 'slstm'): 252,
    ('char', 'mlstm'): 176, ('char', 'xlstm11'): 204, ('char', 'xlstm71'): 184,
}
VOCAB_SIZES = {'ptb': 10_000, 'char': 219}  # what SIZES were solved for
# --smoke: the tiny DEFAULT_SMOKE model (the patterns kept), chunks of 4.
SMOKE = {'model.xlstm.chunk_size': 4}


def get_config():
  c = configs.base_config()
  c.model.dropout_embed = c.model.dropout = c.model.dropout_output = 0.1
  c.model.init_scale = 0.0  # the LSTM too: flax defaults, as the xLSTM
  c.model.forget_bias = 1.0  # LSTM gates (the xLSTM's start at 3..6 plus this)
  c.model.tie_embeddings = False
  c.model.xlstm.chunk_size = 32
  c.train.batch_size = 32
  c.train.seq_len = 64
  c.train.optimizer = 'adamw'
  c.train.learning_rate = 2e-3
  c.train.weight_decay = 0.1
  c.train.schedule = 'cosine'
  c.train.warmup_steps = 200
  c.train.clip_norm = 1.0
  c.train.loss_normalization = 'token'
  c.train.log_every_steps = 200
  c.eval.batch_size = 32
  c.eval.test_batch_size = 8
  c.generate.length = 100
  return c


def arm_overrides(corpus: str, arm: str) -> dict:
  """The overrides of one (corpus, arm) without its size."""
  return {**CORPORA[corpus], **MODELS[arm]}


def sweep(smoke=False):
  del smoke  # DEFAULT_SMOKE shrinks every model alike
  return [(f'{corpus}_{arm}',
           {**arm_overrides(corpus, arm), 'model.hidden_size': SIZES[corpus, arm],
            'model.embed_size': SIZES[corpus, arm], 'seed': 0})
          for corpus in CORPORA for arm in MODELS]
