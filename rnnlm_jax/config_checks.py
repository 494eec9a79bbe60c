"""Checks of a configuration: `validate(config)` raises a one-line ValueError
naming the first bad train / eval / generate value and what it must be.

Data and model values are checked where they are used (rnnlm_jax.data,
rnnlm_jax.models.make_model); registries are consulted at validation time, so
that loading a config needs no jax.
"""

import ml_collections

from rnnlm_jax.configs import SEQ2SEQ_VALID_METRICS


def _check(ok: bool, key: str, value, requirement: str) -> None:
  if not ok:
    raise ValueError(f'{key}={value!r} is invalid: {requirement}')


def _one_of(key: str, value, choices) -> None:
  _check(value in choices, key, value, f'must be one of {tuple(choices)}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad train/eval/generate value."""
  _check_train(config)
  _check_task(config)
  _check_eval_and_generate(config)


def _check_train(config: ml_collections.ConfigDict) -> None:
  t = config.train
  for key in ('batch_size', 'seq_len', 'log_every_steps', 'keep_checkpoints',
              'max_nonfinite_steps', 'ntasgd_nonmono'):
    _check(t[key] > 0, f'train.{key}', t[key], 'must be > 0')
  for key in ('num_epochs', 'num_steps', 'eval_every_steps', 'warmup_steps',
              'checkpoint_every_steps', 'early_stopping_patience',
              'decay_start_epoch', 'finetune_epochs', 'finetune_steps'):
    _check(t[key] >= 0, f'train.{key}', t[key], 'must be >= 0')
  _check(t.num_epochs > 0 or t.num_steps > 0, 'train.num_epochs', t.num_epochs,
         'set train.num_epochs or train.num_steps > 0')
  _check(t.learning_rate > 0, 'train.learning_rate', t.learning_rate, 'must be > 0')
  _check(t.clip_norm >= 0, 'train.clip_norm', t.clip_norm, 'must be >= 0 (0: off)')
  _check(t.weight_decay >= 0, 'train.weight_decay', t.weight_decay, 'must be >= 0')
  _check(0 < t.decay_rate <= 1, 'train.decay_rate', t.decay_rate, 'must be in (0, 1]')
  # Registries live with their code (train/); imported here, at validation
  # time, so that loading a config needs no jax.
  from rnnlm_jax.training import ensembles, finetune, optim, scoring  # pylint: disable=import-outside-toplevel,unused-import
  for table, value in ((optim.OPTIMIZERS, t.optimizer),
                       (optim.SCHEDULES, t.schedule),
                       (scoring.METHODS, config.eval.method)):
    if value not in table:
      raise ValueError(table.unknown(value))
  _check(isinstance(t.variable_bptt, bool), 'train.variable_bptt',
         t.variable_bptt, 'must be True or False')
  _check(0 <= t.bptt_p_full <= 1, 'train.bptt_p_full', t.bptt_p_full,
         'must be in [0, 1]')
  _check(t.bptt_std >= 0, 'train.bptt_std', t.bptt_std, 'must be >= 0')
  _check(t.bptt_bucket > 0, 'train.bptt_bucket', t.bptt_bucket, 'must be > 0')
  _check(not t.variable_bptt or config.data.mode == 'stream',
         'train.variable_bptt', t.variable_bptt, "needs data.mode='stream'")
  _check(not finetune.enabled(config) or t.optimizer == 'ntasgd',
         'train.finetune_epochs', t.finetune_epochs,
         "fine-tuning needs train.optimizer='ntasgd'")
  for key in ('ar_alpha', 'tar_beta'):
    _check(t[key] >= 0, f'train.{key}', t[key], 'must be >= 0 (0: off)')
    _check(t[key] == 0 or config.model.type == 'rnn', f'train.{key}', t[key],
           "needs model.type='rnn'")
  _one_of('train.loss_normalization', t.loss_normalization, ('token', 'sequence'))
  _check(0 <= t.label_smoothing < 1, 'train.label_smoothing', t.label_smoothing,
         'must be in [0, 1)')
  _one_of('train.best_metric', t.best_metric, ('loss',) + SEQ2SEQ_VALID_METRICS)
  _check(t.best_metric == 'loss' or config.task == 'seq2seq', 'train.best_metric',
         t.best_metric, "greedy validation BLEU / chrF need task='seq2seq'")
  _check(not config.eval.translate.valid_bleu or config.task == 'seq2seq',
         'eval.translate.valid_bleu', config.eval.translate.valid_bleu,
         "needs task='seq2seq'")


def _check_task(config: ml_collections.ConfigDict) -> None:
  """The settings that only some tasks or model kinds accept."""
  t = config.train
  _check(not t.init_from or config.task in ('lm', 'instruct'), 'train.init_from',
         t.init_from, "needs task 'lm' or 'instruct'")
  kind = _model_kind(config.model.type)
  _check(not t.init_from or kind == 'lm', 'train.init_from', t.init_from,
         'needs a model with trained params')
  if config.task == 'seq2seq':
    _check(kind == 'encoder_decoder', 'model.type', config.model.type,
           f"task='seq2seq' needs an encoder-decoder, one of {_encoder_decoders()}")
  else:
    _check(kind != 'encoder_decoder', 'model.type', config.model.type,
           f"an encoder-decoder needs task='seq2seq', not {config.task!r}")
  if config.task == 'instruct':
    _check_instruct(config)


def _check_eval_and_generate(config: ml_collections.ConfigDict) -> None:
  e, g = config.eval, config.generate
  for key in ('batch_size', 'test_batch_size'):
    _check(e[key] > 0, f'eval.{key}', e[key], 'must be > 0')
  _check(e.seq_len >= 0, 'eval.seq_len', e.seq_len, 'must be >= 0 (0: train.seq_len)')
  _check(e.dynamic.lr >= 0, 'eval.dynamic.lr', e.dynamic.lr, 'must be >= 0')
  _check(0 <= e.dynamic.decay <= 1, 'eval.dynamic.decay', e.dynamic.decay,
         'must be in [0, 1]')
  _check(e.cache.size > 0, 'eval.cache.size', e.cache.size, 'must be > 0')
  _check(0 <= e.cache.weight <= 1, 'eval.cache.weight', e.cache.weight,
         'must be in [0, 1]')
  _check(e.method != 'cache' or config.model.type == 'rnn', 'eval.method',
         e.method, "'cache' needs model.type='rnn'")
  _check(g.length > 0, 'generate.length', g.length, 'must be > 0')
  _check(g.temperature >= 0, 'generate.temperature', g.temperature,
         'must be >= 0 (0: greedy)')
  _check(g.top_k >= 0, 'generate.top_k', g.top_k, 'must be >= 0 (0: off)')
  _check(0 < g.top_p <= 1, 'generate.top_p', g.top_p, 'must be in (0, 1]')


def _model_kind(model_type: str) -> str:
  """'counted' | 'encoder_decoder' | 'lm' (neural, decoder-only) of a
  MODEL_TYPES entry; an unknown type is reported where the model is built."""
  from rnnlm_jax import models  # pylint: disable=import-outside-toplevel
  if model_type not in models.MODEL_TYPES:
    return 'lm'
  spec = models.MODEL_TYPES.get(model_type)
  if spec.counted:
    return 'counted'
  return 'encoder_decoder' if spec.encoder_decoder else 'lm'


def _encoder_decoders() -> tuple[str, ...]:
  from rnnlm_jax import models  # pylint: disable=import-outside-toplevel
  return tuple(n for n in models.MODEL_TYPES.names()
               if models.MODEL_TYPES.get(n).encoder_decoder)


def _check_instruct(config: ml_collections.ConfigDict) -> None:
  d, i = config.data, config.data.instruct
  _one_of('data.level', d.level, ('char', 'code_bpe'))
  _check(d.spm_vocab_size >= 8, 'data.spm_vocab_size', d.spm_vocab_size,
         'must be >= 8')
  _check(isinstance(i.template, str) and i.template.count('{instruction}') == 1,
         'data.instruct.template', i.template,
         "must contain '{instruction}' exactly once")
  _check(i.max_len == 0 or i.max_len >= 2, 'data.instruct.max_len', i.max_len,
         'must be 0 (no limit) or >= 2')
  _check(i.pad_multiple >= 1, 'data.instruct.pad_multiple', i.pad_multiple,
         'must be >= 1')
  _check(not d.cache_dir, 'data.cache_dir', d.cache_dir,
         "task='instruct' encodes its pairs in memory (no cache); set it to ''")
  _check(_model_kind(config.model.type) == 'lm', 'model.type',
         config.model.type, "task='instruct' trains a decoder-only LM")
  tr = config.model.transformer
  _check(config.model.type != 'transformer' or (
      i.max_len and i.max_len + tr.memory_len <= tr.max_len),
         'data.instruct.max_len', i.max_len,
         f'with model.transformer.memory_len={tr.memory_len} it must fit in '
         f'model.transformer.max_len={tr.max_len} positions')
  from rnnlm_jax import lm_decoding  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.data.corpus import SPLITS  # pylint: disable=import-outside-toplevel
  r = config.eval.respond
  for method in r.methods:
    _one_of('eval.respond.methods entry', method, lm_decoding.METHODS)
  for split in r.splits:
    _one_of('eval.respond.splits entry', split, SPLITS)
  _check(r.max_len >= 1, 'eval.respond.max_len', r.max_len, 'must be >= 1')
  _check(r.beam_size >= 1, 'eval.respond.beam_size', r.beam_size, 'must be >= 1')
  _check(0.0 < r.top_p <= 1.0, 'eval.respond.top_p', r.top_p, 'must be in (0, 1]')
