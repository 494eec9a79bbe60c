"""train.init_from=<workdir>: a new run starts from another run's params.

For every task with params ('lm', 'instruct'), e.g. an instruction-tuned
code model started from a code LM pretrained on the stdlib corpus:

  vocabulary  on a fresh start the other run's vocab.json (and spm.model /
              spm.vocab / spm.json, if it has them) are copied into this
              workdir, with init_from.json recording where from; the task
              then encodes with them instead of building its own
              (run_files.adopted_from). The two runs must share data.level;
              on resume the saved vocabulary must still be the other run's.
  params      once the train state exists and no checkpoint was restored,
              the params of the other run's best checkpoint (else its
              latest; NT-ASGD: the average) replace the fresh ones, after a
              check that both trees have the same paths and shapes. The
              optimizer state is initialized anew on them.

Resuming never reads the other run's params again: the run's own checkpoint
holds them. Every refusal is one line naming both runs.
"""

import json
import os

import jax
import ml_collections
from absl import logging
from etils import epath

from rnnlm_jax import models
from rnnlm_jax.training import parallel, run_files, steps

VOCAB_FILES = ('vocab.json', 'spm.model', 'spm.vocab', 'spm.json')
_HAS_PARAMS = ('lm', 'instruct')


def _error(source: str, workdir: str, problem: str) -> run_files.RunMismatchError:
  return run_files.RunMismatchError(
      f'train.init_from={source}: cannot start {workdir} from it: {problem}')


def source_config(source: str, workdir: str) -> ml_collections.ConfigDict:
  """The config.json of the run `source` (train.init_from)."""
  path = epath.Path(source) / 'config.json'
  if not path.exists():
    raise _error(source, workdir, f'{path} does not exist (not a training run)')
  same = (os.path.abspath(source) == os.path.abspath(workdir)
          if '://' not in source + workdir else source == workdir)
  if same:
    raise _error(source, workdir, 'it is this run itself')
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def _check_compatible(config, init, source: str, workdir: str) -> None:
  if init.get('task', 'lm') not in _HAS_PARAMS or (
      models.MODEL_TYPES.get(init.model.type).counted):
    raise _error(source, workdir, f'it is a task={init.get("task", "lm")!r}, '
                 f'model.type={init.model.type!r} run; only {_HAS_PARAMS} '
                 'runs with trained params can be started from')
  if init.data.level != config.data.level:
    raise _error(source, workdir, f'its vocabulary is data.level='
                 f'{init.data.level!r}, this run\'s data.level='
                 f'{config.data.level!r}')
  needed = ('vocab.json',) + (('spm.model',) if init.data.level == 'code_bpe'
                               else ())
  for name in needed:
    if not (epath.Path(source) / name).exists():
      raise _error(source, workdir, f'it has no {name}')


def adopt_vocabulary(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Copies the init run's vocabulary files into a fresh `workdir` (see the
  module doc); on resume checks the saved vocabulary is still the init run's.
  Without train.init_from, drops a stale init_from.json of a run that never
  wrote a checkpoint."""
  source, marker = config.train.init_from, epath.Path(workdir) / run_files.ADOPTED
  started = run_files.has_started(workdir)
  if not source:
    if not started and marker.exists() and jax.process_index() == 0:
      marker.unlink()
    parallel.sync('rnnlm_jax.init_from.none')
    return
  _check_compatible(config, source_config(source, workdir), source, workdir)
  if started:
    _check_same_vocab(source, workdir)
    return
  if jax.process_index() == 0:
    for name in VOCAB_FILES:
      src, dst = epath.Path(source) / name, epath.Path(workdir) / name
      if src.exists():
        dst.write_bytes(src.read_bytes())
      elif dst.exists():  # a stale file of an earlier start
        dst.unlink()
    run_files.write_json(workdir, run_files.ADOPTED, {'init_from': source})
  parallel.sync('rnnlm_jax.init_from.vocab.copied')


def _check_same_vocab(source: str, workdir: str) -> None:
  if not (epath.Path(workdir) / 'vocab.json').exists():
    return  # nothing saved yet
  difference = run_files.load_vocab(workdir).first_difference(
      run_files.load_vocab(source))
  if difference:
    raise _error(source, workdir, f'{workdir} was trained with another '
                 f'vocabulary than {source} ({difference})')


def restore_params(config: ml_collections.ConfigDict, workdir: str,
                   state: steps.TrainState, mesh) -> steps.TrainState:
  """`state` with the init run's params and a fresh optimizer state on them."""
  from rnnlm_jax.training import inference  # pylint: disable=import-outside-toplevel  (it imports the trainer)
  source = config.train.init_from
  _, trained, _ = inference.load_trained(source_config(source, workdir), source,
                                         'best')
  check_same_params(trained.params, state.params, source, workdir)
  params = jax.device_put(trained.params, parallel.replicated(mesh))
  opt_state = jax.jit(state.tx.init,
                      out_shardings=parallel.replicated(mesh))(params)
  step = int(trained.step)
  logging.info('initialized the params from %s (its best checkpoint, else '
               'latest: step %d); fresh optimizer state', source, step)
  run_files.write_json(workdir, run_files.ADOPTED,
                       {'init_from': source, 'init_from_step': step})
  return state.replace(params=params, opt_state=opt_state)


def _shapes(tree) -> dict[str, tuple]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): (tuple(x.shape), str(x.dtype))
          for path, x in leaves}


def check_same_params(init_params, params, source: str, workdir: str) -> None:
  """One-line RunMismatchError at the first parameter path whose presence,
  shape or dtype differs."""
  theirs, ours = _shapes(init_params), _shapes(params)
  for path in list(ours) + [p for p in theirs if p not in ours]:
    a, b = theirs.get(path), ours.get(path)
    if a != b:
      show = lambda x: 'absent' if x is None else f'{x[0]} {x[1]}'
      raise _error(source, workdir, f'parameter {path} is {show(a)} there but '
                   f'{show(b)} here (a different model config?)')


def results(workdir: str) -> dict:
  """init_from (and the step its params came from) for results.json."""
  record = run_files.adopted_from(workdir)
  return dict(record) if record else {}
