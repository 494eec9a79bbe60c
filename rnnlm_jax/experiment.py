r"""Command line: train / eval / generate an experiment.

  python -m rnnlm_jax.experiment train --config experiments/quickstart/config.py
  python -m rnnlm_jax.experiment train --config experiments/zaremba_small/config.py \
      --config.train.num_epochs=1 --workdir /tmp/zs
  python -m rnnlm_jax.experiment eval --config ... [--split test] [--checkpoint best]
  python -m rnnlm_jax.experiment generate --config ... --prompt 'the ' --length 300
  python -m rnnlm_jax.experiment generate --config ... --instruction 'Add two numbers.' [--beam 5 | --top_p 0.9]
  python -m rnnlm_jax.experiment sweep experiments/ablation_cells [--smoke]

The default workdir is `workdir/` inside the experiment's folder. Running the
same train command again resumes from the latest checkpoint.
"""

import difflib
import json
import logging as logging_std
import os
import re
import sys

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ('train', 'eval', 'generate', 'translate', 'sweep')

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (experiments/<name>/config.py).',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Run directory (default: <config dir>/workdir); may be gs://.')
_FRESH = flags.DEFINE_bool(
    'fresh', False, 'Start anew: move an existing run in --workdir aside (kept).')
_SPLIT = flags.DEFINE_enum('split', 'test', ['train', 'valid', 'test'],
                           'eval: split to score.')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'best', ['best', 'latest', 'average'],
    'eval/generate/translate: which checkpoint (average: the mean params of '
    'the kept latest checkpoints, train.keep_checkpoints of them).')
_PROMPT = flags.DEFINE_string('prompt', None, 'generate: prompt text.')
_INSTRUCTION = flags.DEFINE_string(
    'instruction', None, 'generate: respond to this instruction (in '
    'data.instruct.template): greedy, or --beam N, or --top_p P.')
_TEXT = flags.DEFINE_multi_string('text', [], 'translate: a sentence (repeatable).')
_INPUT = flags.DEFINE_string('input', None, 'translate: a file, one sentence per line.')
_OUTPUT = flags.DEFINE_string('output', None, 'translate: write here (default: stdout).')
_BEAM = flags.DEFINE_integer('beam', None, 'translate, generate --instruction: '
                             'beam size (1: greedy; translate default '
                             'eval.translate.beam_size).')
_LENGTH = flags.DEFINE_integer('length', None, 'generate: tokens to sample.')
_TEMPERATURE = flags.DEFINE_float('temperature', None, 'generate: 0 is greedy.')
_TOP_K = flags.DEFINE_integer('top_k', None, 'generate: keep the k likeliest (0: all).')
_TOP_P = flags.DEFINE_float('top_p', None, 'generate: nucleus mass (1: all).')
_SEED = flags.DEFINE_integer('seed', None, 'generate: sampling seed.')
_SMOKE = flags.DEFINE_bool('smoke', False, 'sweep: tiny overrides, runs in seconds.')
_ARMS = flags.DEFINE_list('arms', [], 'sweep: run only these arms.')
_SEEDS = flags.DEFINE_list('seeds', [], 'sweep: run only these seeds.')


def default_workdir(config_path: str) -> str:
  path = config_path.split(':')[0]  # config_flags allows 'file.py:arg'
  return os.path.join(os.path.dirname(os.path.abspath(path)), 'workdir')


def _generate_overrides(config) -> None:
  """Plain --prompt/--length/... flags win over config.generate.*."""
  for flag, key in ((_PROMPT, 'prompt'), (_LENGTH, 'length'),
                    (_TEMPERATURE, 'temperature'), (_TOP_K, 'top_k'),
                    (_TOP_P, 'top_p'), (_SEED, 'seed')):
    if flag.value is not None:
      config.generate[key] = flag.value


class _OwnInfoOnly(logging_std.Filter):
  """INFO lines from rnnlm_jax only: Orbax and JAX log dozens per checkpoint.

  Their warnings and errors still pass.
  """

  def filter(self, record: logging_std.LogRecord) -> bool:
    return (record.levelno >= logging_std.WARNING
            or f'{os.sep}rnnlm_jax{os.sep}' in record.pathname)


def sweep(argv) -> None:
  """sweep <experiment folder> (see rnnlm_jax/sweep.py)."""
  from rnnlm_jax import sweep as sweep_lib  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import parallel  # pylint: disable=import-outside-toplevel
  if len(argv) != 3:
    raise app.UsageError('usage: python -m rnnlm_jax.experiment sweep '
                         'experiments/<name> [--smoke] [--workdir DIR] [--arms a,b] '
                         '[--seeds 0,1]')
  logging.get_absl_handler().addFilter(_OwnInfoOnly())
  parallel.initialize_if_requested()
  sweep_lib.run_sweep(argv[2], smoke=_SMOKE.value, workdir=_WORKDIR.value,
                      only=_ARMS.value, seeds=_SEEDS.value)


def main(argv) -> None:
  if argv[1:2] == ['sweep']:
    return sweep(argv)
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f'usage: python -m rnnlm_jax.experiment {{{"|".join(COMMANDS)}}} '
                         '--config experiments/<name>/config.py [--config.key=value ...]')
  if _CONFIG.value is None:
    raise app.UsageError('--config is required (e.g. experiments/quickstart/config.py)')
  # Imported here so `--help` and usage errors stay instant.
  from rnnlm_jax import config_checks, models  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import inference, parallel, trainer  # pylint: disable=import-outside-toplevel

  logging.get_absl_handler().addFilter(_OwnInfoOnly())
  parallel.initialize_if_requested()
  config = _CONFIG.value
  _generate_overrides(config)
  config_checks.validate(config)
  models.validate(config.model)
  workdir = _WORKDIR.value or default_workdir(config_flags.get_config_filename(
      flags.FLAGS['config']))
  command = argv[1]
  if command == 'train':
    results = dict(trainer.train_and_evaluate(config, workdir, fresh=_FRESH.value))
    sample = results.pop('sample', '')
    print(json.dumps(results, indent=2))
    print(f'--- sample ---\n{sample}')
  elif command == 'eval':
    print(json.dumps(inference.evaluate_checkpoint(config, workdir, _SPLIT.value,
                                              _CHECKPOINT.value), indent=2))
  elif command == 'translate':
    _translate(config, workdir, inference)
  else:
    print(inference.generate(config, workdir, _CHECKPOINT.value,
                             instruction=_INSTRUCTION.value, beam=_BEAM.value,
                             top_p=_TOP_P.value))


def _translate(config, workdir: str, inference) -> None:
  """--text / --input sentences -> translations on stdout or in --output."""
  texts = list(_TEXT.value)
  if _INPUT.value:
    with open(_INPUT.value, encoding='utf-8') as f:
      texts += [line.rstrip('\n') for line in f]
  if not texts:
    raise ValueError('translate needs --text or --input')
  lines = inference.translate(config, workdir, texts, beam=_BEAM.value,
                              which=_CHECKPOINT.value)
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w', encoding='utf-8') as f:
      f.write('\n'.join(lines) + '\n')
  else:
    print('\n'.join(lines))


_OVERRIDE = re.compile(r'^--?(?:no)?config\.([^=\[]+)')
_HELP = re.compile(r'^--?(?:help|helpshort|helpfull|helpxml|\?)(?:=|$)')


def _keys(config, prefix=''):
  """Every dotted key of a ConfigDict, groups ('train') included."""
  for key, value in config.items():
    yield prefix + key
    if isinstance(value, ml_collections.ConfigDict):
      yield from _keys(value, f'{prefix}{key}.')


def unknown_override(config, argv) -> str | None:
  """A one-line message for the first --config.<key> that `config` lacks."""
  keys = list(_keys(config))
  for arg in argv:
    match = _OVERRIDE.match(arg)
    if match and match.group(1) not in keys:
      key = match.group(1)
      close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
      hint = (f'; did you mean {close[0]}?' if close
              else ' (rnnlm_jax/configs.py lists every key)')
      return f'unknown config key {key} in {arg}{hint}'
  return None


def _config_file(argv) -> str | None:
  for i, arg in enumerate(argv):
    if arg in ('--config', '-config') and i + 1 < len(argv):
      return argv[i + 1]
    if arg.startswith(('--config=', '-config=')):
      return arg.split('=', 1)[1]
  return None


def _parse_flags(argv):
  """absl's flag parsing, bad flags as one `error: ...` line (exit 2).

  An unknown --config.<key> otherwise ends in ml_collections' traceback, from
  inside the parsing of --config (where the file's config is not kept): the
  file is loaded once more here to name the key and its closest valid one.
  """
  path = _config_file(argv)
  if path is not None and not os.path.isfile(path.split(':', 1)[0]):
    print(f'error: --config {path}: no such file', file=sys.stderr)
    sys.exit(2)
  try:
    return flags.FLAGS(argv)
  except SystemExit as e:  # absl's --help exits 1 after printing the help
    if e.code == 1 and any(_HELP.match(a) for a in argv[1:]):
      sys.exit(0)
    raise
  except flags.Error as e:
    message = str(e)
  except Exception:  # pylint: disable=broad-except
    message = None
    if path is not None:
      from rnnlm_jax import sweep as sweep_lib  # pylint: disable=import-outside-toplevel
      file, *arg = path.split(':', 1)
      try:
        message = unknown_override(sweep_lib.load_module(file).get_config(*arg),
                                   argv)
      except Exception:  # pylint: disable=broad-except
        pass  # the original error, below, says more than this one
    if message is None or os.environ.get('RNNLM_JAX_TRACEBACK'):
      raise
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def run() -> None:
  """Entry point: bad input ends with one line naming the problem, exit 2."""
  def guarded(argv):
    from rnnlm_jax.training import progress  # pylint: disable=import-outside-toplevel
    try:
      main(argv)
    except progress.Preempted as e:
      logging.flush()
      print(str(e), file=sys.stderr)
      sys.exit(progress.EXIT_CODE)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
      if os.environ.get('RNNLM_JAX_TRACEBACK'):
        raise
      logging.flush()
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
  from rnnlm_jax.sweep import positional_experiment  # pylint: disable=import-outside-toplevel
  app.run(guarded, argv=positional_experiment(sys.argv), flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
