# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Recurrent language models with rnnlm_jax: a tutorial
#
# From raw Penn Treebank lines to a trained LSTM language model, its
# overfitting and how to fight it, sampling, and an encoder-decoder with
# attention on Multi30k. Every step runs through this codebase's own API
# (`rnnlm_jax.train`, `rnnlm_jax.load`, `rnnlm_jax.data`, the cells of
# `rnnlm_jax/models/cells.py`); nothing is re-implemented except one LSTM
# step recomputed by hand in numpy, to check the equations.
#
# `docs/tutorial.py` is the source (jupytext percent format);
# `docs/tutorial.ipynb` is rendered from it by `python scripts/render_tutorial.py`.
# Run it as a notebook or as a script (`python docs/tutorial.py`). The run
# that drew the figures (`docs/tutorial_*.png`) took 41 minutes on a 2-core
# CPU machine shared with other jobs; with
# `RNNLM_JAX_TUTORIAL_SMALL=1` every run shrinks to a few steps and tiny
# sizes (the same code: the test suite runs it that way).
#
# Data: PTB and Multi30k under the data root (`$RNNLM_JAX_DATA`, else
# `../shared/data` beside the checkout; `python scripts/get_data.py ptb multi30k`
# downloads them).

# %%
import gzip
import inspect
import os
import sys
import tempfile

HERE = (os.path.dirname(os.path.abspath(__file__)) if '__file__' in globals()
        else os.getcwd())  # a notebook runs in docs/
try:
  import rnnlm_jax
except ImportError:  # run from the checkout without `pip install .`
  sys.path.insert(0, os.path.dirname(HERE))
  import rnnlm_jax

import matplotlib
IN_NOTEBOOK = 'ipykernel' in sys.modules
if not IN_NOTEBOOK:
  matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np

import jax
import jax.numpy as jnp
from rnnlm_jax import code_metrics, configs, data, metrics, recipes
from rnnlm_jax.data import paths
from rnnlm_jax.models import cells

SMALL = os.environ.get('RNNLM_JAX_TUTORIAL_SMALL', '') == '1'
# Figures: docs/tutorial_*.png, or elsewhere (the test writes to a temp dir).
FIGURES = os.environ.get('RNNLM_JAX_TUTORIAL_FIGURES') or HERE
os.makedirs(FIGURES, exist_ok=True)
WORK = tempfile.mkdtemp(prefix='rnnlm_jax_tutorial_')  # the runs' workdirs


def size(full, small):
  """The value of a size in this mode (SMALL: tiny, a smoke run)."""
  return small if SMALL else full


def save(fig, name):
  """Writes fig to FIGURES/tutorial_<name>.png (and shows it in a notebook)."""
  path = os.path.join(FIGURES, f'tutorial_{name}.png')
  fig.savefig(path, dpi=100, bbox_inches='tight')
  if not IN_NOTEBOOK:
    plt.close(fig)
  print('wrote', path)
  return path


print('jax', jax.__version__, jax.devices(), '| SMALL' if SMALL else '| full')
PTB = paths.dataset_path('ptb')
MULTI30K = paths.dataset_path('multi30k')

# %% [markdown]
# ## 1. Data: vocabulary, tokens, padding, truncated-BPTT windows
#
# Mikolov's PTB is already lower-cased, numbers are `N` and rare words
# `<unk>`, one sentence per line. At word level, `data.tokenize` splits on
# whitespace and ends every line with `<eos>`.

# %%
with open(os.path.join(PTB, 'ptb.train.txt')) as f:
  train_text = f.read()
lines = train_text.split('\n')[:3]
for line in lines:
  print(repr(line))
tokens = data.tokenize('\n'.join(lines) + '\n', 'word')
print(len(tokens), 'tokens:', tokens[:12], '...')

# %% [markdown]
# The vocabulary is built from the train split: special tokens first, then
# words by descending count (ties by the word), so the same text always gives
# the same ids. Unknown words map to `<unk>`.

# %%
vocab = data.Vocabulary.build(data.tokenize(train_text, 'word'))
print(vocab, '| first ids:', vocab.tokens[:8])
ids = vocab.encode(tokens)
print('ids:', ids[:12])
print('round trip:', data.detokenize(vocab.decode(ids[:12]), 'word'))
print('an unseen word ->', vocab.encode(['rnnlmjax']), '=', vocab.tokens[vocab.unk_id])

# %% [markdown]
# **Stream mode (truncated BPTT).** `data.load_corpus` reads and encodes the
# three splits from a config. The training stream is cut into `B` contiguous
# rows and read in windows of `T` tokens; the targets are the inputs shifted
# by one. Window `i + 1` of row `b` continues window `i`, so the model
# carries its hidden state across windows and backpropagates through `T`
# steps only.

# %%
config = configs.ptb_config()
config.data.max_train_tokens = size(200_000, 20_000)  # a cap, to keep CPU runs short
config.data.max_eval_tokens = size(20_000, 2_000)
corpus = data.load_corpus(config.data)
print(corpus)
B, T = 4, 8
windows = list(data.bptt_windows(corpus.train, batch_size=B, seq_len=T))
print(len(windows), 'windows =', data.num_bptt_windows(len(corpus.train), B, T))
first, second = windows[0], windows[1]
for row in range(2):
  print(f'row {row} window 0 inputs :', ' '.join(vocab.decode(first.inputs[row])))
  print(f'row {row} window 0 targets:', ' '.join(vocab.decode(first.targets[row])))
  print(f'row {row} window 1 inputs :', ' '.join(vocab.decode(second.inputs[row])))
# Row b of window 1 starts where row b of window 0 ended.
assert (second.inputs[:, 0] == first.targets[:, -1]).all()

# %% [markdown]
# **Sentence mode: padding and truncation.** With `data.mode='sentence'`
# every row is one sentence (the previous `<eos>` acting as its start
# token), truncated to `max_len` and padded with id 0; the mask marks the real
# targets, and the state is reset for every batch.

# %%
batch = next(data.sentence_batches(corpus.train, corpus.boundary_id,
                                   batch_size=3, max_len=12))
for r in range(3):
  print('inputs :', ' '.join(vocab.decode(batch.inputs[r])))
  print('targets:', ' '.join(vocab.decode(batch.targets[r])),
        '| mask', batch.mask[r].astype(int))

# %% [markdown]
# A training run asks its `EpochPlan` (from the config and the corpus) how
# many steps an epoch has and which batches make epoch `e`: a pure function
# of (config, epoch), which is what makes resuming exact.

# %%
config.train.batch_size, config.train.seq_len = 20, 20
plan = data.EpochPlan(config, corpus)
print('steps per epoch:', plan.steps_per_epoch,
      '=', data.num_bptt_windows(len(corpus.train), 20, 20))
print('step 1234 is (epoch, batch)', plan.locate(1234))

# %% [markdown]
# ## 2. The cells: equations and code
#
# Every cell is written as `new_carry = update(x_gates, h_gates, carry)`, with
# the input projection $x_t W_{ih} + b$ computed for all time steps in one
# matmul before `jax.lax.scan`, and only $h_{t-1} W_{hh}$ inside it.
#
# Vanilla RNN (`rnn_tanh`):
# $$h_t = \tanh(x_t W_{ih} + b + h_{t-1} W_{hh})$$
#
# LSTM (`lstm`, gates $i, f, g, o$ fused into one $[D, 4H]$ matrix):
# $$\begin{aligned}
# [i_t, f_t, g_t, o_t] &= x_t W_{ih} + b + h_{t-1} W_{hh} \\
# c_t &= \sigma(f_t) \odot c_{t-1} + \sigma(i_t) \odot \tanh(g_t) \\
# h_t &= \sigma(o_t) \odot \tanh(c_t)
# \end{aligned}$$
#
# GRU (`gru`, the PyTorch/cuDNN form, gates $r, z, n$):
# $$\begin{aligned}
# r_t &= \sigma(x^r_t + h_{t-1} W^r_{hh}), \quad z_t = \sigma(x^z_t + h_{t-1} W^z_{hh}) \\
# n_t &= \tanh(x^n_t + r_t \odot (h_{t-1} W^n_{hh} + b_{hn})) \\
# h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
# \end{aligned}$$
#
# The code of these updates in `rnnlm_jax/models/cells.py`:

# %%
print(inspect.getsource(cells.rnn_tanh_update))
print(inspect.getsource(cells.lstm_update))
print(inspect.getsource(cells.gru_update))

# %% [markdown]
# One LSTM layer (`cells.RecurrentLayer`, the layer every language model
# stacks) with its real initial parameters, run on three embedded PTB
# words; then the same three steps by hand in numpy from the layer's
# `kernel_ih`, `bias_ih` and `kernel_hh`.

# %%
D, H = 6, 5
layer = cells.RecurrentLayer(cell='lstm', hidden_size=H, init_scale=0.1)
embed = np.random.default_rng(0).normal(size=(len(vocab), D)).astype(np.float32)
x = jnp.asarray(embed[vocab.encode('the company said'.split())])[None]  # [1, 3, D]
carry0 = cells.initial_carry('lstm', 1, H)
params = layer.init(jax.random.PRNGKey(0), x, carry0)['params']
outputs, (h_last, c_last) = layer.apply({'params': params}, x, carry0)
print({k: v.shape for k, v in params.items()})


def sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


W_ih, b, W_hh = (np.asarray(params[k]) for k in ('kernel_ih', 'bias_ih', 'kernel_hh'))
h, c = np.zeros(H), np.zeros(H)
by_hand = []
for t in range(x.shape[1]):  # by hand: a Python loop over time is fine here
  i, f, g, o = np.split(np.asarray(x[0, t]) @ W_ih + b + h @ W_hh, 4)
  c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
  h = sigmoid(o) * np.tanh(c)
  by_hand.append(h)
np.testing.assert_allclose(np.stack(by_hand), np.asarray(outputs[0]), atol=1e-5)
np.testing.assert_allclose(c, np.asarray(c_last[0]), atol=1e-5)
print('h_t of the layer :', np.asarray(outputs[0, -1]).round(4))
print('h_t by hand      :', h.round(4), '-> equal')

# %% [markdown]
# ## 3. Training an LSTM language model on PTB
#
# `recipes.zaremba('small')` is Zaremba et al. (2014)'s small model (2 x 200
# LSTM, SGD at learning rate 1, gradient clipping at 5). Here it trains on
# the first 200k PTB tokens for 1,000 steps (2 epochs of them; about 15
# minutes on the shared 2-core CPU), validating every 100 steps. `rnnlm_jax.train(config, workdir)` is the command line's driver:
# checkpoints, `metrics.jsonl`, `results.json`, resuming.

# %%
lm_config = recipes.zaremba('small')
lm_config.data.max_train_tokens = size(200_000, 20_000)
lm_config.data.max_eval_tokens = size(20_000, 2_000)
lm_config.data.vocab_max_size = size(0, 2_000)  # 0: PTB's 10k words
lm_config.model.hidden_size = lm_config.model.embed_size = size(200, 16)
lm_config.model.num_layers = size(2, 1)
lm_config.train.num_steps = size(1_000, 20)
lm_config.train.log_every_steps = size(50, 5)
lm_config.train.eval_every_steps = size(100, 10)
lm_config.train.progress_bar = False
# The papers score the test split at batch 1; batch 20 is much faster here.
lm_config.eval.test_batch_size = 20
lm_config.generate.length = size(50, 10)
lm_dir = os.path.join(WORK, 'lstm')
results = rnnlm_jax.train(lm_config, lm_dir)
print({k: round(results[k], 2) for k in ('valid_ppl', 'test_ppl', 'epochs')},
      '| parameters:', results['num_params'])

# %% [markdown]
# The learning curve, from the run's `metrics.jsonl` (one line per log
# interval: `{"step", "split": "train" | "valid", "loss", "ppl", ...}`).

# %%
def curves(workdir):
  """{split: (steps, perplexities)} of a run's metrics.jsonl."""
  lines = metrics.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  out = {}
  for split in ('train', 'valid'):
    rows = [l for l in lines if l['split'] == split]
    out[split] = ([l['step'] for l in rows], [l['ppl'] for l in rows])
  return out


lm_curves = curves(lm_dir)
fig, ax = plt.subplots(figsize=(6, 4))
for split, (steps, ppl) in lm_curves.items():
  ax.plot(steps, ppl, marker='.' if split == 'valid' else None, label=split)
ax.set_yscale('log')
ax.set_xlabel('step')
ax.set_ylabel('perplexity')
ax.set_title('LSTM LM on PTB (first %dk tokens)' % (lm_config.data.max_train_tokens // 1000))
ax.legend()
save(fig, 'learning_curve')

# %% [markdown]
# A trained run loads with `rnnlm_jax.load(workdir)` (the best checkpoint by
# validation loss) and scores any text as one stream, state carried:

# %%
run = rnnlm_jax.load(lm_dir)
for sentence in ('the company said it expects sales to rise\n',
                 'rise to sales expects it said company the\n'):
  s = run.score(sentence)
  print(f"ppl {s['ppl']:9.1f}  {sentence.strip()}")

# %% [markdown]
# ## 4. Overfitting: dropout, early stopping
#
# On a small train split a model with enough capacity memorizes it: the
# train perplexity keeps falling while the validation perplexity turns back
# up. Two runs on the first 50k PTB tokens, a 1 x 400 LSTM trained with Adam,
# identical but for dropout (`model.dropout_embed`, `model.dropout_output`:
# Zaremba's dropout on the non-recurrent connections). Both have
# `train.early_stopping_patience = 3`: a run stops after three validations
# without a new best, and `load` returns the best checkpoint.

# %%
def overfit_config(dropout):
  c = recipes.zaremba('small')
  c.data.max_train_tokens = size(50_000, 10_000)
  c.data.max_eval_tokens = size(20_000, 2_000)
  c.data.vocab_max_size = size(0, 2_000)
  c.model.num_layers = 1
  c.model.hidden_size = c.model.embed_size = size(400, 16)
  c.model.dropout_embed = c.model.dropout_output = dropout
  c.train.optimizer, c.train.learning_rate = 'adam', 2e-3
  c.train.schedule = 'constant'
  c.train.loss_normalization = 'token'
  c.train.num_steps = size(600, 20)
  c.train.log_every_steps = size(25, 5)
  c.train.eval_every_steps = size(50, 10)
  c.train.early_stopping_patience = 3  # validations without a new best
  c.train.progress_bar = False
  c.eval.test_batch_size = 20
  c.generate.length = 10
  return c


overfit = {}
for dropout in (0.0, 0.5):
  workdir = os.path.join(WORK, f'dropout{dropout}')
  overfit[dropout] = (rnnlm_jax.train(overfit_config(dropout), workdir),
                      curves(workdir))
  r = overfit[dropout][0]
  print(f"dropout {dropout}: best valid ppl {r['valid_ppl']:.1f} at step "
        f"{r['best_step']}, trained {r['steps']} steps, stopped early: {r['stopped_early']}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, (dropout, (r, cv)) in zip(axes, overfit.items()):
  for split, (steps, ppl) in cv.items():
    ax.plot(steps, ppl, marker='.' if split == 'valid' else None, label=split)
  ax.axvline(r['best_step'], color='gray', linestyle=':', label='best checkpoint')
  ax.set_yscale('log')
  ax.set_xlabel('step')
  ax.set_title(f"dropout {dropout}: best valid ppl {r['valid_ppl']:.0f}"
               + (' (stopped early)' if r['stopped_early'] else ''))
  ax.legend()
axes[0].set_ylabel('perplexity')
save(fig, 'overfitting')

# %% [markdown]
# In the full-size run that drew `docs/tutorial_overfitting.png`, without
# dropout the validation perplexity was best at step 250 (512) and then no
# longer improved while the train perplexity kept falling (to about 150 at
# step 400): early stopping ended the run at step 400, three validations
# after its best, and the best checkpoint is the one kept. With dropout 0.5
# the train perplexity fell more slowly, the gap between the curves stayed
# smaller, and the best validation perplexity was lower (479, at step 500 of
# 600). One seed on a 50k-token slice: an illustration, not a measurement
# to quote; the README's FAQ cites what is measured at full size.

# %% [markdown]
# ## 5. Generation: temperature, top-k, top-p
#
# `run.generate(prompt, length, temperature, top_k, top_p, seed)` samples from
# the model of section 3. Temperature < 1 sharpens the distribution (0 is
# greedy), > 1 flattens it; top-k keeps the k most likely words, top-p
# (nucleus) the smallest set whose probability reaches p.

# %%
length = size(30, 8)
for name, kwargs in [('greedy (temperature 0)', dict(temperature=0.0)),
                     ('temperature 0.7', dict(temperature=0.7)),
                     ('temperature 1.5', dict(temperature=1.5)),
                     ('top-k 10', dict(top_k=10)),
                     ('top-p 0.9', dict(top_p=0.9))]:
  text = run.generate('the company', length=length, seed=1, **kwargs)
  print(f'{name:24s}', text.replace('\n', ' <eos> '))

# %% [markdown]
# ## 6. Encoder-decoder with attention: German to English on Multi30k
#
# `recipes.multi30k('additive')` is the bidirectional-GRU encoder and GRU
# decoder with Bahdanau (additive) attention at bentrevett/pytorch-seq2seq's
# shape (embeddings 256, hidden 512). Shrunk here to train for a few minutes
# on a CPU: the sentence pairs are padded per length bucket and masked, the
# decoder is trained with teacher forcing, and the final results include
# sacreBLEU of greedy and beam-search output.

# %%
mt_config = recipes.multi30k('additive')
mt_config.data.paired.max_pairs = size(0, 64)  # 0: all 29k training pairs
mt_config.data.paired.max_source_len = size(0, 7)  # train pairs cut (0: no cap)
mt_config.data.paired.max_target_len = size(0, 7)
mt_config.data.vocab_max_size = size(0, 1_000)
mt_config.model.embed_size = size(128, 16)
mt_config.model.seq2seq.encoder_hidden = size(128, 16)
mt_config.model.seq2seq.decoder_hidden = size(128, 16)
mt_config.model.dropout = size(0.3, 0.0)
mt_config.train.batch_size = size(64, 32)
mt_config.train.num_steps = size(800, 10)
mt_config.train.log_every_steps = size(50, 5)
mt_config.train.eval_every_steps = size(200, 10)
mt_config.train.progress_bar = False
mt_config.eval.batch_size = mt_config.eval.test_batch_size = size(128, 64)
mt_config.eval.translate.batch_size = size(128, 64)
mt_config.eval.translate.beam_size = BEAM = size(5, 1)  # 1: greedy
mt_config.eval.translate.max_len = size(40, 8)
mt_dir = os.path.join(WORK, 'multi30k')
mt_results = rnnlm_jax.train(mt_config, mt_dir)
print({k: round(mt_results[k], 2) for k in
       ('valid_ppl', 'test_ppl', 'test_greedy_bleu', 'test_beam_bleu')})

# %%
def first_lines(name, n):
  with gzip.open(os.path.join(MULTI30K, name), 'rt', encoding='utf-8') as f:
    return [next(f).strip() for _ in range(n)]


german = first_lines('test_2016_flickr.de.gz', 3)
english = first_lines('test_2016_flickr.en.gz', 3)
mt = rnnlm_jax.load(mt_dir)
for src, ref, greedy, beam in zip(german, english, mt.translate(german, beam=1),
                                  mt.translate(german, beam=BEAM)):
  print(f'de:     {src}\nref:    {ref}\ngreedy: {greedy}\nbeam {BEAM}: {beam}\n')

# %% [markdown]
# `run.attention(sentence)` is the greedy translation of one sentence with
# the decoder's attention weights `[target_len, source_len]`: row $t$ is the
# softmax over the source positions when output word $t$ was produced.

# %%
att = mt.attention(german[0])
print(att.translation)
print('weights', att.weights.shape, '| rows sum to', att.weights.sum(axis=1).round(3))
path = att.save_png(os.path.join(FIGURES, 'tutorial_attention.png'),
                    title='additive attention, Multi30k test sentence 0')
print('wrote', path)
if IN_NOTEBOOK:
  from IPython.display import Image, display
  display(Image(path))

# %% [markdown]
# ## 7. Instruction following on open-source code
#
# `data.paired.format='code_instructions'` turns the Python standard library
# into (instruction, response) pairs with `ast`: the first paragraph of a
# function's docstring is the instruction, the function's source without its
# docstring the response, split by file exactly as the stdlib LM corpus is
# (a model pretrained on its train split never saw a test function).
# `task='instruct'` trains a decoder-only LM on rows
# `<eos> + template(instruction) + response + <eos>` with the loss on the
# response only (the prompt targets are masked), in SentencePiece pieces that
# keep code byte for byte (`data.level='code_bpe'`). A run ends with the
# decoded test responses scored by exact match, chrF, BLEU and the fraction
# that parses as Python. (`experiments/code_instructions` compares LSTM,
# pretrained LSTM, GRU encoder-decoder and Transformer on the full data.)

# %%
code_config = configs.base_config()
code_config.task = 'instruct'
code_config.data.paired.format = 'code_instructions'
code_config.data.paired.max_pairs = size(0, 48)  # 0: all 5,714 train pairs
code_config.data.level = 'code_bpe'
code_config.data.spm_vocab_size = size(2000, 400)
code_config.data.instruct.max_len = size(256, 64)
code_config.model.num_layers = 1
code_config.model.hidden_size = code_config.model.embed_size = size(256, 16)
code_config.model.tie_embeddings = True
code_config.train.batch_size = size(32, 8)
code_config.train.num_steps = size(600, 4)
code_config.train.optimizer, code_config.train.learning_rate = 'adam', 2e-3
code_config.train.schedule = 'constant'
code_config.train.loss_normalization = 'token'
code_config.train.log_every_steps = code_config.train.eval_every_steps = size(200, 2)
code_config.train.progress_bar = False
code_config.eval.batch_size = code_config.eval.test_batch_size = size(32, 8)
code_config.eval.respond.max_pairs = size(64, 4)
code_config.eval.respond.max_len = size(128, 8)
code_dir = os.path.join(WORK, 'code')
code_results = rnnlm_jax.train(code_config, code_dir)
print({k: round(code_results[k], 2) for k in
       ('test_ppl', 'test_bits_per_char', 'test_greedy_exact_match',
        'test_greedy_chrf', 'test_greedy_parse_rate')})

# %% [markdown]
# `run.respond(instruction)` answers one instruction (greedy, or
# `method='beam'` / `'top_p'`); `code_metrics.parses` is the parse check.

# %%
code = rnnlm_jax.load(code_dir)
instruction = 'Return the sum of the squares of the numbers in a list.'
response = code.respond(instruction, max_len=size(128, 8))
print('instruction:', instruction)
print('response:\n' + response)
print('parses as Python:', code_metrics.parses(response))

# %%
print('done; workdirs in', WORK)
