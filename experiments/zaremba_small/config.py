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

from rnnlm_jax import recipes


def get_config():
  return recipes.zaremba('small')
