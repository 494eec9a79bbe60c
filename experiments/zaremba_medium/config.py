"""Zaremba, Sutskever & Vinyals (2014), "medium" regularized LSTM on PTB.

2 layers x 650 (embedding 650), unrolled 35 steps, batch 20, dropout 0.5 on
the non-recurrent connections (embedding output, between the layers, before
the softmax), uniform init [-0.05, 0.05], SGD lr 1 for 6 epochs then x0.8 per
epoch, 39 epochs, gradient norm clipped at 5. (The paper's text says "decrease
by a factor of 1.2"; its released TF code, ptb_word_lm.py MediumConfig, uses
lr_decay 0.8, which is what this config does.)
Paper: valid 86.2 / test 82.7 perplexity.

  python -m rnnlm_jax.experiment train --config experiments/zaremba_medium/config.py

PTB (Mikolov's ptb.{train,valid,test}.txt) is read from data.path; the default
is <data root>/ptb ($RNNLM_JAX_DATA, else ../shared/data beside this checkout;
`python scripts/get_data.py ptb` fetches it). Elsewhere:
  --config.data.path=/path/to/ptb

Hardware/time: NOT YET RUN with this config -- no measured time or result
yet. (Expect hours on a GPU; far too slow for a CPU.) Fill in
experiments/zaremba_medium/README.md from a real run.
"""

from rnnlm_jax import recipes

# Published numbers (Table 1 of the paper), for comparison with results.json.
PAPER = {'valid_ppl': 86.2, 'test_ppl': 82.7}


def get_config():
  return recipes.zaremba('medium')
