"""Quickstart: a small character-level LSTM on the Python standard library's source.

No download: the corpus is the .py source of the interpreter running it
(a real code corpus on every machine; its fingerprint lands in results.json).

  python -m rnnlm_jax.experiment train --config experiments/quickstart/config.py

Hardware/time: 2 CPU cores, about 3 minutes (measured 2 min 38 s wall on the
project's 2-vCPU machine, Python 3.11 stdlib, jax 0.10.2).
Expected: valid 2.00 / test 1.94 bits per character after 600 steps (measured;
the corpus, and so the numbers, differ a little between Python versions), and
a sample of Python-looking text in experiments/quickstart/workdir/samples.txt.
"""

from rnnlm_jax import configs


def get_config():
  c = configs.base_config()
  c.data.source = 'stdlib'
  c.data.level = 'char'
  c.data.vocab_min_count = 5  # rare characters -> <unk>
  c.data.max_train_tokens = 2_000_000
  c.data.max_eval_tokens = 50_000

  c.model.cell = 'lstm'
  c.model.num_layers = 1
  c.model.embed_size = 64
  c.model.hidden_size = 256
  c.model.init_scale = 0.0  # flax defaults (orthogonal recurrent weights)

  c.train.batch_size = 32
  c.train.seq_len = 64
  c.train.num_steps = 600
  c.train.optimizer = 'adam'
  c.train.learning_rate = 3e-3
  c.train.schedule = 'cosine'
  c.train.warmup_steps = 50
  c.train.clip_norm = 1.0
  c.train.loss_normalization = 'token'
  c.train.log_every_steps = 50
  c.train.eval_every_steps = 200

  c.eval.batch_size = 16
  c.eval.test_batch_size = 1

  c.generate.prompt = 'def '
  c.generate.length = 300
  c.generate.temperature = 0.8
  return c
