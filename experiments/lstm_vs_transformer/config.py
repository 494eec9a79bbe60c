"""LSTM vs a causal transformer at a matched parameter count on PTB (words).

Both without dropout, 13 epochs of 20-token windows, batch 20, each with the
usual recipe of its kind, and scored on the best checkpoint by validation:

  lstm         experiments/zaremba_small as is: 2 x 200, SGD lr 1, step decay.
               4,651,600 parameters.
  transformer  2 pre-LN blocks, d_model 188, 4 heads, MLP 752, learned
               positions, a 64-token memory of earlier windows; Adam 1e-3,
               500 warmup steps then cosine, clip 1, per-token loss.
               4,639,312 parameters (-0.3%).

(tests/test_sweep.py checks the match on the initialized models.)

  python -m rnnlm_jax.experiment sweep experiments/lstm_vs_transformer
  python -m rnnlm_jax.experiment sweep experiments/lstm_vs_transformer --smoke

Results: experiments/lstm_vs_transformer/results.md and learning_curves.png,
written by the sweep. Hardware/time: 1 h 23 min for both on a 2-vCPU CPU
(lstm test 115.06, transformer 129.99; README.md).
"""

from rnnlm_jax import recipes

TRANSFORMER = {
    'model.type': 'transformer',
    'model.num_layers': 2,
    'model.transformer.d_model': 188,
    'model.transformer.num_heads': 4,
    'model.transformer.mlp_dim': 0,  # 4 * d_model
    'model.transformer.position': 'learned',
    'model.transformer.memory_len': 64,
    'model.transformer.max_len': 84,  # memory_len + train.seq_len (20)
    'train.optimizer': 'adam',
    'train.learning_rate': 1e-3,
    'train.schedule': 'cosine',
    'train.warmup_steps': 500,
    'train.clip_norm': 1.0,
    'train.loss_normalization': 'token',
}


def get_config():
  return recipes.zaremba('small')


def sweep():
  return [('lstm', {}), ('transformer', TRANSFORMER)]
