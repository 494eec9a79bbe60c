"""Zaremba, Sutskever & Vinyals (2014), "large" regularized LSTM on PTB.

2 layers x 1500 (embedding 1500), unrolled 35 steps, batch 20, dropout 0.65 on
the non-recurrent connections (embedding output, between the layers, before
the softmax), uniform init [-0.04, 0.04], SGD lr 1 for 14 epochs then x1/1.15
per epoch, 55 epochs, gradient norm clipped at 10 (the paper and its TF code,
ptb_word_lm.py LargeConfig, agree).
Paper: valid 82.2 / test 78.4 perplexity.

  python -m rnnlm_jax.experiment train --config experiments/zaremba_large/config.py

PTB (Mikolov's ptb.{train,valid,test}.txt) is read from data.path; the default
is <data root>/ptb ($RNNLM_JAX_DATA, else ../shared/data beside this checkout;
`python scripts/get_data.py ptb` fetches it). Elsewhere:
  --config.data.path=/path/to/ptb

Hardware/time: NOT YET RUN with this config -- no measured time or result
yet. (Expect most of a day on one GPU; not feasible on a CPU.) Fill in
experiments/zaremba_large/README.md from a real run.
"""

from rnnlm_jax import recipes

# Published numbers (Table 1 of the paper), for comparison with results.json.
PAPER = {'valid_ppl': 82.2, 'test_ppl': 78.4}


def get_config():
  return recipes.zaremba('large')
