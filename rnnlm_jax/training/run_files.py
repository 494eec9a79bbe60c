"""A run's working directory: its resolved config, vocabulary and results.

Layout (all written by process 0):
  config.json       the resolved config of the run
  vocab.json        the vocabulary (ids are what the checkpoints were trained on)
  spm.model         data.level='code_bpe': its SentencePiece model (+ .vocab,
                    .json training record); load_tokenizer(workdir)
  checkpoints/      Orbax, latest N      best/   Orbax, best by validation
  metrics.jsonl     one line per log/eval  tensorboard/  the same, for TensorBoard
  results.json      final valid/test numbers   samples.txt  generated text
  init_from.json    train.init_from: the run whose params and vocabulary
                    (vocab.json, spm.*; copied here) this run started from

Paths go through etils.epath, so gs://bucket/... works wherever a local path does.
"""

import datetime
import json
from typing import Any

import jax
import ml_collections
from etils import epath

from rnnlm_jax import configs, data
from rnnlm_jax.training import parallel

# Keys that must not change when a run is resumed: they change what the
# checkpoint means (shapes, vocabulary, data order). Anything else (epochs,
# logging, evaluation sizes) may be changed to extend or inspect a run.
RESUME_KEYS = ('seed', 'data', 'model', 'train.batch_size', 'train.seq_len',
               'train.variable_bptt', 'train.bptt_p_full', 'train.bptt_std',
               'train.bptt_bucket',
               # the saved best value is of this metric
               'train.best_metric')
# Under RESUME_KEYS but only *how* the same model is computed (same params,
# same gradients): free to change on resume, e.g. after benchmarking.
FREE_KEYS = ('model.unroll', 'model.recurrent_backward', 'data.cache_dir')


ADOPTED = 'init_from.json'


class RunMismatchError(ValueError):
  """Resuming with settings or data that differ from the run's."""


def flatten(config: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in config.items():
    name = f'{prefix}{key}'
    if isinstance(value, dict):
      flat.update(flatten(value, name + '.'))
    else:
      flat[name] = list(value) if isinstance(value, tuple) else value
  return flat


def config_difference(saved: dict, current: dict) -> str | None:
  """First resume-relevant key whose value differs, as 'key: old -> new'.

  A key the saved run did not have (added to the codebase since) counts as
  unchanged while the current value is its default, i.e. today's behaviour.
  """
  old, new = flatten(saved), flatten(current)
  defaults = flatten(config_dict(configs.base_config()))
  for key in sorted(set(old) | set(new)):
    if key not in new:  # a key the codebase no longer has
      continue
    if key in FREE_KEYS or not any(
        key == k or key.startswith(k + '.') for k in RESUME_KEYS):
      continue
    before = old.get(key, defaults.get(key))
    if before != new.get(key):
      return f'{key}: {before!r} -> {new.get(key)!r}'
  return None


def has_started(workdir: str) -> bool:
  """Whether any checkpoint was written: before that, nothing can be lost and
  a changed config simply replaces the one of the failed start."""
  path = epath.Path(workdir) / 'checkpoints'
  return path.exists() and any(p.name.isdigit() for p in path.iterdir())


def config_dict(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort())


def _is_main() -> bool:
  return jax.process_index() == 0


def prepare(config: ml_collections.ConfigDict, workdir: str,
            fresh: bool = False) -> None:
  """Creates or reopens `workdir` for `config`.

  An existing run with different RESUME_KEYS is an error naming the key; with
  `fresh`, that old run is moved aside (never deleted) and a new one starts.
  """
  path = epath.Path(workdir)
  saved_config = path / 'config.json'
  exists = saved_config.exists()
  if exists and not fresh and has_started(workdir):
    difference = config_difference(json.loads(saved_config.read_text()),
                                   config_dict(config))
    if difference:
      raise RunMismatchError(
          f'{workdir} holds a run with different settings ({difference}); '
          'pass --fresh to move it aside and start anew, or use another --workdir')
  # Multi-host: everyone has read the old config before process 0 replaces
  # it, and sees the new one only once it is complete.
  parallel.sync('rnnlm_jax.workdir.prepare.read')
  if _is_main():
    if fresh and exists:
      stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
      path.rename(path.parent / f'{path.name}.old-{stamp}')
    path.mkdir(parents=True, exist_ok=True)
    saved_config.write_text(config.to_json_best_effort(indent=2) + '\n')
  parallel.sync('rnnlm_jax.workdir.prepare.written')


def load_corpus(config: ml_collections.ConfigDict, workdir: str) -> data.Corpus:
  """The LM corpus; on resume, insists the vocabulary is the saved one. A run
  started from another (train.init_from) encodes with that run's vocabulary,
  copied into the workdir."""
  vocab_path = epath.Path(workdir) / 'vocab.json'
  adopted = adopted_from(workdir) is not None
  corpus = data.load_corpus(config.data, load_vocab(workdir) if adopted else None,
                           spm_dir=workdir)
  exists = vocab_path.exists() and (adopted or has_started(workdir))
  if exists and not adopted:
    saved = load_vocab(workdir)
    difference = saved.first_difference(corpus.vocab)
    if difference:
      raise RunMismatchError(
          f'vocabulary differs from the one {workdir} was trained with '
          f'({difference}): the data changed; pass --fresh to start anew')
  parallel.sync('rnnlm_jax.workdir.vocab.read')
  if not exists and _is_main():
    corpus.vocab.save(vocab_path)
  parallel.sync('rnnlm_jax.workdir.vocab.written')
  return corpus


def adopted_from(workdir: str) -> dict | None:
  """The record of the run this one took its params and vocabulary from
  ({'init_from': workdir, ...}), or None."""
  return read_json(workdir, ADOPTED)


def load_vocab(workdir: str) -> data.Vocabulary:
  vocab_path = epath.Path(workdir) / 'vocab.json'
  if not vocab_path.exists():
    raise FileNotFoundError(f'{vocab_path} is missing: is {workdir} a training run?')
  return data.Vocabulary.load(vocab_path)


def load_tokenizer(workdir: str):
  """The SentencePiece tokenizer of a data.level='code_bpe' run (its
  spm.model); ids are vocab.json's: piece_corpus.vocabulary(tokenizer)."""
  return data.piece_corpus.load_tokenizer(workdir)


def write_json(workdir: str, name: str, value: Any) -> None:
  if _is_main():
    (epath.Path(workdir) / name).write_text(json.dumps(value, indent=2) + '\n')


def read_json(workdir: str, name: str) -> Any | None:
  path = epath.Path(workdir) / name
  return json.loads(path.read_text()) if path.exists() else None


def append_text(workdir: str, name: str, text: str) -> None:
  if _is_main():
    path = epath.Path(workdir) / name
    old = path.read_text() if path.exists() else ''
    path.write_text(old + text)
