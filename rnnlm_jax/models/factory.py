"""Builds the model of the `model` section of the config, validated.

`model.type` names an entry of MODEL_TYPES: 'rnn' (RecurrentLM, the default)
'transformer' (TransformerLM, options in model.transformer), 'xlstm'
(XLSTMLM, model.xlstm), the encoder-decoders 'seq2seq' (TranslationModel,
model.seq2seq) and 'transformer_seq2seq' (TransformerSeq2Seq,
model.transformer), and 'ngram' (counted); every entry has the same
call/carry interface. A new model type is one `register` call
with its class and a function from the config section to its fields.

Bad values fail here, at startup, with a one-line ValueError that names the
config key, instead of as a shape error deep inside jit.
"""

import dataclasses
import numbers
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from rnnlm_jax import registry
from rnnlm_jax.models import cells
from rnnlm_jax.models import attention, seq2seq, xlstm_blocks
from rnnlm_jax.models.rnn_lm import RecurrentLM
from rnnlm_jax.models.transformer import POSITIONS, TransformerLM
from rnnlm_jax.models.transformer_seq2seq import TransformerSeq2Seq

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
DROPOUT_KINDS = ('standard', 'locked')
# AWD-LSTM keys that only the RNN implements, with their 'off' values.
RNN_ONLY = {'dropout_kind': 'standard', 'dropout_embed_rows': 0.0,
            'weight_drop': 0.0, 'init_scheme': 'uniform', 'two_biases': False}
INITS = ('uniform', 'pytorch')


def _is_int(value: Any) -> bool:
  # bool is an int subclass, but `num_layers=True` is certainly a mistake.
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fail(key: str, value: Any, requirement: str) -> None:
  raise ValueError(f'model.{key}={value!r} {requirement}')


def _lookup(cfg: Mapping[str, Any], key: str) -> Any:
  """cfg[key] for a dotted key: 'transformer.d_model' -> cfg['transformer']['d_model']."""
  for part in key.split('.'):
    cfg = cfg[part]
  return cfg


def _positive_int(cfg: Mapping[str, Any], key: str) -> int:
  value = _lookup(cfg, key)
  if not _is_int(value) or value < 1:
    _fail(key, value, 'must be a positive integer')
  return int(value)


def _rate(cfg: Mapping[str, Any], key: str) -> float:
  value = _lookup(cfg, key)
  if not _is_real(value) or not 0.0 <= value < 1.0:
    _fail(key, value, 'must be a dropout rate in [0, 1)')
  return float(value)


def _number(cfg: Mapping[str, Any], key: str, minimum: float | None) -> float:
  value = _lookup(cfg, key)
  if not _is_real(value) or (minimum is not None and value < minimum):
    _fail(key, value, 'must be a number' +
          ('' if minimum is None else f' >= {minimum}'))
  return float(value)


def _unroll(cfg: Mapping[str, Any]) -> int:
  """`unroll` 0 means: 8 on GPU/TPU, where it hides per-step launch latency,
  and 1 on CPU, where it gains nothing and compiles much slower
  (docs/performance.md)."""
  value = cfg['unroll']
  if not _is_int(value) or value < 0:
    _fail('unroll', value, 'must be an int >= 0 (0: 8 on accelerators, 1 on CPU)')
  if value:
    return value
  return 1 if jax.default_backend() == 'cpu' else 8


BACKWARDS = ('after_loop', 'autodiff')


def _weight_grad_after_loop(cfg: Mapping[str, Any]) -> bool:
  """model.recurrent_backward -> whether d(kernel_hh) is computed after the
  backward loop (see configs.py)."""
  value = cfg['recurrent_backward']
  if value not in BACKWARDS:
    _fail('recurrent_backward', value, f'is not one of {BACKWARDS}')
  return value == 'after_loop'


def _common(cfg: Mapping[str, Any]) -> dict[str, Any]:
  if cfg['dtype'] not in DTYPES:
    _fail('dtype', cfg['dtype'], f'is not one of {tuple(DTYPES)}')
  if not isinstance(cfg['tie_embeddings'], bool):
    _fail('tie_embeddings', cfg['tie_embeddings'], 'must be True or False')
  return dict(
      num_layers=_positive_int(cfg, 'num_layers'),
      tie_embeddings=cfg['tie_embeddings'],
      dropout_embed=_rate(cfg, 'dropout_embed'),
      dropout=_rate(cfg, 'dropout'),
      dropout_output=_rate(cfg, 'dropout_output'),
      dtype=DTYPES[cfg['dtype']],
  )


def _rnn_only(cfg: Mapping[str, Any]) -> None:
  for key, off in RNN_ONLY.items():
    if cfg[key] != off:  # silently ignoring it would mislead
      _fail(key, cfg[key], f"is only for model.type='rnn' (use {off!r})")


def _validate_xlstm(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """model.type='xlstm': D = hidden_size, the blocks from model.xlstm."""
  _rnn_only(cfg)
  fields = _common(cfg)
  del fields['num_layers']  # the pattern sets the depth
  d_model = _positive_int(cfg, 'hidden_size')
  fields.update(
      hidden_size=d_model,
      forget_bias=_number(cfg, 'forget_bias', minimum=None),
      unroll=_unroll(cfg),
      weight_grad_after_loop=_weight_grad_after_loop(cfg),
      **xlstm_blocks.validate_options(cfg.get('xlstm', None), d_model))
  return fields


def _transformer_shape(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """The model.transformer keys both Transformers read (d_model, heads,
  MLP width, positions, max_len, attention dropout)."""
  t = cfg['transformer']
  d_model = _positive_int(cfg, 'transformer.d_model')
  num_heads = _positive_int(cfg, 'transformer.num_heads')
  if d_model % num_heads:
    _fail('transformer.num_heads', num_heads,
          f'must divide model.transformer.d_model={d_model}')
  mlp_dim = t['mlp_dim']
  if not _is_int(mlp_dim) or mlp_dim < 0:
    _fail('transformer.mlp_dim', mlp_dim, 'must be an int >= 0 (0: 4 * d_model)')
  if t['position'] not in POSITIONS:
    _fail('transformer.position', t['position'], f'is not one of {POSITIONS}')
  return dict(
      d_model=d_model, num_heads=num_heads, mlp_dim=int(mlp_dim or 4 * d_model),
      position=t['position'], max_len=_positive_int(cfg, 'transformer.max_len'),
      attention_dropout=_rate(cfg, 'transformer.attention_dropout'))


def _validate_transformer(cfg: Mapping[str, Any]) -> dict[str, Any]:
  _rnn_only(cfg)
  fields = _common(cfg)
  fields.update(_transformer_shape(cfg))
  memory_len = cfg['transformer']['memory_len']
  if not _is_int(memory_len) or memory_len < 0:
    _fail('transformer.memory_len', memory_len, 'must be an int >= 0')
  if fields['position'] == 'learned' and fields['max_len'] <= memory_len:
    _fail('transformer.max_len', fields['max_len'],
          f'must exceed model.transformer.memory_len={memory_len}')
  fields['memory_len'] = int(memory_len)
  return fields


def _validate_rnn(cfg: Mapping[str, Any]) -> dict[str, Any]:
  if cfg['cell'] not in cells.CELLS:
    raise ValueError(cells.CELLS.unknown(cfg['cell']))
  options = dict(cfg.get(cfg['cell'], None) or {})  # the cell's own settings
  layer = cells.spec(cfg['cell']).layer
  if options and layer is not None:
    known = {f.name for f in dataclasses.fields(layer)}
    for key in options:
      if key not in known:
        _fail(f"{cfg['cell']}.{key}", options[key],
              f"is not a setting of model.cell={cfg['cell']!r}")
  fields = _common(cfg)
  fields.update(
      cell=cfg['cell'],
      hidden_size=_positive_int(cfg, 'hidden_size'),
      embed_size=_positive_int(cfg, 'embed_size'),
      init_scale=_number(cfg, 'init_scale', minimum=0.0),
      forget_bias=_number(cfg, 'forget_bias', minimum=None),
      unroll=_unroll(cfg),
      weight_grad_after_loop=_weight_grad_after_loop(cfg),
      cell_options=tuple(sorted(options.items())),
      init_scheme=_choice(cfg, 'init_scheme', INITS),
      two_biases=_two_biases(cfg),
  )
  fields.update(_awd(cfg))
  return fields


def _choice(cfg: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
  value = cfg[key]
  if value not in choices:
    _fail(key, value, f'is not one of {choices}')
  return value


def _two_biases(cfg: Mapping[str, Any]) -> bool:
  value = cfg['two_biases']
  if not isinstance(value, bool):
    _fail('two_biases', value, 'must be True or False')
  if value and cells.spec(cfg['cell']).layer is not None:
    _fail('two_biases', value, f"is only for the gated cells "
          f"{cells.gated_cells()}, not model.cell={cfg['cell']!r}")
  return value


def _awd(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """The AWD-LSTM regularizer fields."""
  kind = cfg['dropout_kind']
  if kind not in DROPOUT_KINDS:
    _fail('dropout_kind', kind, f'is not one of {DROPOUT_KINDS}')
  return dict(dropout_kind=kind,
              **{key: _rate(cfg, key) for key in ('dropout_embed_rows', 'weight_drop')})


@dataclasses.dataclass(frozen=True)
class ModelType:
  """A model class and the function from the `model` config section to its
  constructor fields (validated; raises a one-line ValueError).

  counted: trained by counting, not by gradients (rnnlm_jax.training.counting);
    `cls` is then unused.
  encoder_decoder: trained on sentence pairs (task='seq2seq'): `cls` takes
    source_vocab_size, is called on (source, source_mask, inputs) and has
    encode / decode_step / logits_and_attention (rnnlm_jax.decoding).
  """
  cls: Any
  fields: Callable[[Mapping[str, Any]], dict[str, Any]]
  counted: bool = False
  encoder_decoder: bool = False


def _validate_seq2seq(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """model.type='seq2seq': the shared keys plus model.seq2seq's."""
  _rnn_only(cfg)
  common = _common(cfg)
  s = cfg['seq2seq']
  for key in ('encoder_cell', 'decoder_cell'):
    if s[key] not in cells.gated_cells():
      _fail(f'seq2seq.{key}', s[key], f'is not one of {cells.gated_cells()}')
  if s['attention'] not in attention.KINDS:
    _fail('seq2seq.attention', s['attention'], f'is not one of {attention.KINDS}')
  if not isinstance(s['bidirectional'], bool):
    _fail('seq2seq.bidirectional', s['bidirectional'], 'must be True or False')
  teacher_forcing = _number(cfg, 'seq2seq.teacher_forcing', minimum=0.0)
  if teacher_forcing > 1:
    _fail('seq2seq.teacher_forcing', teacher_forcing, 'must be in [0, 1]')
  size = s['attention_size']
  if not _is_int(size) or size < 0:
    _fail('seq2seq.attention_size', size, 'must be an int >= 0 (0: decoder_hidden)')
  return dict(
      embed_size=_positive_int(cfg, 'embed_size'),
      encoder_cell=s['encoder_cell'], decoder_cell=s['decoder_cell'],
      encoder_hidden=_positive_int(cfg, 'seq2seq.encoder_hidden'),
      decoder_hidden=_positive_int(cfg, 'seq2seq.decoder_hidden'),
      encoder_layers=_positive_int(cfg, 'seq2seq.encoder_layers'),
      bidirectional=s['bidirectional'], attention=s['attention'],
      attention_size=int(size), dropout=common['dropout'],
      tie_embeddings=common['tie_embeddings'], teacher_forcing=teacher_forcing,
      init_scale=_number(cfg, 'init_scale', minimum=0.0),
      dtype=common['dtype'], unroll=_unroll(cfg))


def _validate_transformer_seq2seq(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """model.type='transformer_seq2seq': num_layers encoder and decoder
  layers, the shared keys and model.transformer's (not memory_len)."""
  _rnn_only(cfg)
  fields = _common(cfg)
  fields.update(_transformer_shape(cfg))
  return fields


def _translation_model(vocab_size: int, source_vocab_size: int, **fields):
  return seq2seq.TranslationModel(source_vocab_size=source_vocab_size,
                                  target_vocab_size=vocab_size, **fields)


def _transformer_translation_model(vocab_size: int, source_vocab_size: int,
                                   **fields):
  return TransformerSeq2Seq(source_vocab_size=source_vocab_size,
                            target_vocab_size=vocab_size, **fields)


MODEL_TYPES: registry.Registry[ModelType] = registry.Registry('model.type')
MODEL_TYPES.register('rnn', ModelType(RecurrentLM, _validate_rnn))
MODEL_TYPES.register('transformer', ModelType(TransformerLM, _validate_transformer))
MODEL_TYPES.register('xlstm', ModelType(xlstm_blocks.XLSTMLM, _validate_xlstm))
MODEL_TYPES.register('seq2seq', ModelType(
    _translation_model, _validate_seq2seq, encoder_decoder=True))
MODEL_TYPES.register('transformer_seq2seq', ModelType(
    _transformer_translation_model, _validate_transformer_seq2seq,
    encoder_decoder=True))


def _validate_ngram(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """model.type='ngram': interpolated modified Kneser-Ney of model.ngram.order."""
  order = cfg['ngram']['order']
  if not _is_int(order) or not 2 <= order <= 7:
    _fail('ngram.order', order, 'must be an int in 2..7')
  return {'order': int(order)}


MODEL_TYPES.register('ngram', ModelType(None, _validate_ngram, counted=True))


def validate(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """Checks the `model` config section; returns the model's field values."""
  if cfg['type'] not in MODEL_TYPES:
    raise ValueError(MODEL_TYPES.unknown(cfg['type']))
  return MODEL_TYPES.get(cfg['type']).fields(cfg)


def make_model(model_config: Mapping[str, Any], vocab_size: int, **sizes):
  """The model for `config.model` (an ml_collections.ConfigDict or a dict).

  vocab_size: the (target) vocabulary; `sizes`: what else a model type needs
  (seq2seq: source_vocab_size).
  """
  for name, size in dict(sizes, vocab_size=vocab_size).items():
    if not _is_int(size) or size < 1:
      raise ValueError(f'{name}={size!r} must be a positive integer')
  spec = MODEL_TYPES.get(model_config['type'])
  return spec.cls(vocab_size=vocab_size, **sizes, **spec.fields(model_config))
