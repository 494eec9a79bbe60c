r"""Multi30k De->En encoder-decoders: attention {none, additive, dot} x cell
{GRU, LSTM}, at multi30k_gru_attention's shape (dot: a bidirectional
encoder of 2 x 256, so that its outputs match the 512 decoder), and the
Transformer of multi30k_transformer (arm `transformer`); every run reports
greedy and beam-5 decoding (GNMT length penalty eval.translate.length_penalty).

  python -m rnnlm_jax.experiment sweep experiments/multi30k_sweep
  python -m rnnlm_jax.experiment sweep experiments/multi30k_sweep --smoke  # seconds per arm

Hardware, time and results: NOT YET RUN at full size (each arm is hours on
2 CPU cores; see experiments/multi30k_gru_attention/README.md).
"""

from rnnlm_jax import recipes

ATTENTION = ('none', 'additive', 'dot')
CELLS = ('gru', 'lstm')
# --smoke: multi30k's tiny model, and for the Transformer arm (with
# DEFAULT_SMOKE's small model.transformer) room for the longest sentence of
# the capped splits.
SMOKE = {**recipes.MULTI30K_SMOKE, 'model.transformer.max_len': 64}


def get_config():
  return recipes.multi30k('additive')


def sweep():
  arms = []
  for attention in ATTENTION:
    for cell in CELLS:
      arm = {'model.seq2seq.attention': attention,
             'model.seq2seq.encoder_cell': cell,
             'model.seq2seq.decoder_cell': cell}
      if attention == 'dot':  # scores need encoder outputs of the decoder's size
        arm['model.seq2seq.encoder_hidden'] = 256  # 2 x 256 = 512
      arms.append((f'{attention}_{cell}', arm))
  arms.append(('transformer', dict(recipes.MULTI30K_TRANSFORMER)))
  return arms
