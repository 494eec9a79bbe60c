"""Recurrent language models (RNN, LSTM, GRU, sLSTM, mLSTM) in flax.linen, an
xLSTM and a transformer.

Public API:
  RecurrentLM, TransformerLM, XLSTMLM, the encoder-decoders TranslationModel
  (models.seq2seq) and TransformerSeq2Seq (models.transformer_seq2seq);
  make_model(config.model, vocab_size) (the MODEL_TYPES entry model.type
  names), count_params(params);
  cells: CELLS, RecurrentLayer, initial_carry, cell_step.
"""

from rnnlm_jax.models.cells import CELLS
from rnnlm_jax.models.cells import RecurrentLayer
from rnnlm_jax.models.cells import cell_step
from rnnlm_jax.models.cells import initial_carry
from rnnlm_jax.models import linear_cells  # noqa: F401 (registers mingru, minlstm, lru, rglru)
from rnnlm_jax.models.factory import DTYPES
from rnnlm_jax.models.factory import MODEL_TYPES
from rnnlm_jax.models.factory import ModelType
from rnnlm_jax.models.factory import make_model
from rnnlm_jax.models.factory import validate
from rnnlm_jax.models.rnn_lm import RecurrentLM
from rnnlm_jax.models.rnn_lm import count_params
from rnnlm_jax.models.seq2seq import Seq2Seq
from rnnlm_jax.models.seq2seq import TranslationModel
from rnnlm_jax.models.transformer import TransformerLM
from rnnlm_jax.models.transformer_seq2seq import TransformerSeq2Seq
from rnnlm_jax.models.xlstm_blocks import XLSTMLM  # also registers slstm, mlstm

__all__ = [
    'CELLS', 'DTYPES', 'MODEL_TYPES', 'ModelType', 'RecurrentLM', 'RecurrentLayer',
    'Seq2Seq', 'TranslationModel', 'XLSTMLM',
    'TransformerLM', 'TransformerSeq2Seq', 'cell_step', 'count_params',
    'initial_carry', 'make_model', 'validate',
]
