"""Zaremba, Sutskever & Vinyals (2014), "small" (non-regularized) LSTM on PTB.

2 layers x 200, unrolled 20 steps, batch 20, SGD lr 1 for 4 epochs then x0.5
per epoch, 13 epochs, gradient norm clipped at 5, uniform init [-0.1, 0.1],
no dropout. Paper: valid 120.7 / test 114.5 perplexity.

  python -m rnnlm_jax.experiment train --config experiments/zaremba_small/config.py

PTB (Mikolov's ptb.{train,valid,test}.txt) is read from data.path; the default
is <data root>/ptb ($RNNLM_JAX_DATA, else ../shared/data beside this checkout;
`python scripts/get_data.py ptb` fetches it). Elsewhere:
  --config.data.path=/path/to/ptb

Measured with this exact config on the project's 2-vCPU CPU (shared, nice 19):
13 epochs in ~1 h 52 min, best valid 119.05, test 114.61 (batch 1);
details in experiments/zaremba_small/README.md.
"""

from rnnlm_jax import configs


def get_config():
  """The small model; zaremba_medium and zaremba_large start from it."""
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
  return c
