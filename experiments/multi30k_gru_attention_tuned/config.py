r"""multi30k_gru_attention (the tutorial's shape: embeddings 256, bidirectional
GRU encoder 512, GRU decoder 512, additive attention, dropout 0.5, Adam,
clipping 1) with what the finished run's outputs asked for: it overfitted
from epoch 7 at a constant learning rate, and beam search gained from a
longer length penalty. Changes, nothing else:
  - label-smoothed cross-entropy, eps 0.1 (train.label_smoothing);
  - the learning rate halved each epoch after the 5th (step_decay);
  - the best checkpoint, and early stopping's gain, by greedy lower-cased
    validation BLEU (train.best_metric), the number the goal is stated in;
  - the last 4 epochs kept, for checkpoint averaging afterwards
    (--checkpoint average).

  python -m rnnlm_jax.experiment train --config experiments/multi30k_gru_attention_tuned/config.py
  python scripts/tune_length_penalty.py --workdir experiments/multi30k_gru_attention_tuned/workdir \
      --alphas 0.0,1.0,2.0,3.0,4.0 --split valid [--checkpoint average]

Hardware, time and the measured result: the experiment's README.md.
"""

from rnnlm_jax import recipes


def get_config():
  return recipes.multi30k_tuned()
