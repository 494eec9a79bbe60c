"""Builds the LM of the `model` section of the config, validated.

`model.type` picks it: 'rnn' (RecurrentLM, the default), 'transformer'
(TransformerLM) or 'xlstm' (XLSTMLM); all have the same call/carry interface.

Bad values fail here, at startup, with a one-line ValueError that names the
config key, instead of as a shape error deep inside jit.
"""

import numbers
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from rnnlm_jax.models import cells
from rnnlm_jax.models import xlstm_blocks
from rnnlm_jax.models.rnn_lm import RecurrentLM
from rnnlm_jax.models.transformer import TransformerLM

TYPES = ('rnn', 'transformer', 'xlstm')
POSITIONS = ('learned', 'sinusoidal')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
DROPOUT_KINDS = ('standard', 'locked')
# AWD-LSTM keys that only the RNN implements, with their 'off' values.
RNN_ONLY = {'dropout_kind': 'standard', 'dropout_embed_rows': 0.0,
            'weight_drop': 0.0}


def _is_int(value: Any) -> bool:
  # bool is an int subclass, but `num_layers=True` is certainly a mistake.
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fail(key: str, value: Any, requirement: str) -> None:
  raise ValueError(f'model.{key}={value!r} {requirement}')


def _positive_int(cfg: Mapping[str, Any], key: str) -> int:
  value = cfg[key]
  if not _is_int(value) or value < 1:
    _fail(key, value, 'must be a positive integer')
  return int(value)


def _rate(cfg: Mapping[str, Any], key: str) -> float:
  value = cfg[key]
  if not _is_real(value) or not 0.0 <= value < 1.0:
    _fail(key, value, 'must be a dropout rate in [0, 1)')
  return float(value)


def _number(cfg: Mapping[str, Any], key: str, minimum: float | None) -> float:
  value = cfg[key]
  if not _is_real(value) or (minimum is not None and value < minimum):
    _fail(key, value, 'must be a number' +
          ('' if minimum is None else f' >= {minimum}'))
  return float(value)


def _unroll(cfg: Mapping[str, Any]) -> int:
  """`unroll` 0 means: 8 on GPU/TPU, where it hides per-step launch latency,
  and 1 on CPU, where it gains nothing and compiles ~10x slower (measured)."""
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
  value = cfg.get('recurrent_backward', 'after_loop')  # dicts from before the key
  if value not in BACKWARDS:
    _fail('recurrent_backward', value, f'is not one of {BACKWARDS}')
  return value == 'after_loop'


def _type(cfg: Mapping[str, Any]) -> str:
  model_type = cfg.get('type', 'rnn')  # dicts from before the key existed
  if model_type not in TYPES:
    _fail('type', model_type, f'is not one of {TYPES}')
  return model_type


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
    if cfg.get(key, off) != off:  # silently ignoring it would mislead
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


def _validate_transformer(cfg: Mapping[str, Any]) -> dict[str, Any]:
  _rnn_only(cfg)
  fields = _common(cfg)
  d_model = _positive_int(cfg, 'd_model')
  num_heads = _positive_int(cfg, 'num_heads')
  if d_model % num_heads:
    _fail('num_heads', num_heads, f'must divide model.d_model={d_model}')
  mlp_dim = cfg['mlp_dim']
  if not _is_int(mlp_dim) or mlp_dim < 0:
    _fail('mlp_dim', mlp_dim, 'must be an int >= 0 (0: 4 * d_model)')
  if cfg['position'] not in POSITIONS:
    _fail('position', cfg['position'], f'is not one of {POSITIONS}')
  memory_len = cfg['memory_len']
  if not _is_int(memory_len) or memory_len < 0:
    _fail('memory_len', memory_len, 'must be an int >= 0')
  max_len = _positive_int(cfg, 'max_len')
  if cfg['position'] == 'learned' and max_len <= memory_len:
    _fail('max_len', max_len, f'must exceed model.memory_len={memory_len}')
  fields.update(
      d_model=d_model, num_heads=num_heads, mlp_dim=int(mlp_dim or 4 * d_model),
      position=cfg['position'], memory_len=int(memory_len), max_len=max_len,
      attention_dropout=_rate(cfg, 'attention_dropout'))
  return fields


def validate(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """Checks the `model` config section; returns the model's field values."""
  if _type(cfg) == 'transformer':
    return _validate_transformer(cfg)
  if _type(cfg) == 'xlstm':
    return _validate_xlstm(cfg)
  if cfg['cell'] not in cells.CELLS:
    raise ValueError(cells.CELLS.unknown(cfg['cell']))
  options = cfg.get(cfg['cell'], None)  # the cell's own nested settings
  fields = _common(cfg)
  fields.update(
      cell=cfg['cell'],
      hidden_size=_positive_int(cfg, 'hidden_size'),
      embed_size=_positive_int(cfg, 'embed_size'),
      init_scale=_number(cfg, 'init_scale', minimum=0.0),
      forget_bias=_number(cfg, 'forget_bias', minimum=None),
      unroll=_unroll(cfg),
      weight_grad_after_loop=_weight_grad_after_loop(cfg),
      cell_options=tuple(sorted(dict(options or {}).items())),
  )
  fields.update(_awd(cfg))
  return fields


def _awd(cfg: Mapping[str, Any]) -> dict[str, Any]:
  """The AWD-LSTM regularizer fields; dicts older than the keys get 'off'."""
  kind = cfg.get('dropout_kind', 'standard')
  if kind not in DROPOUT_KINDS:
    _fail('dropout_kind', kind, f'is not one of {DROPOUT_KINDS}')
  rates = {}
  for key in ('dropout_embed_rows', 'weight_drop'):
    rates[key] = _rate(cfg, key) if key in cfg else 0.0
  return dict(dropout_kind=kind, **rates)


def make_model(model_config: Mapping[str, Any], vocab_size: int
               ) -> RecurrentLM | TransformerLM | xlstm_blocks.XLSTMLM:
  """The LM for `config.model` (an ml_collections.ConfigDict or a dict)."""
  if not _is_int(vocab_size) or vocab_size < 1:
    raise ValueError(f'vocab_size={vocab_size!r} must be a positive integer')
  cls = {'rnn': RecurrentLM, 'transformer': TransformerLM,
         'xlstm': xlstm_blocks.XLSTMLM}[_type(model_config)]
  return cls(vocab_size=vocab_size, **validate(model_config))
