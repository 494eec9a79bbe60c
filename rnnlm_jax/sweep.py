"""Sweeps: run every arm of an experiment, then tabulate and plot them.

  python -m rnnlm_jax.experiment sweep experiments/ablation_cells [--smoke]
  python -m rnnlm_jax.experiment sweep --config experiments/ablation_cells
  python -m rnnlm_jax.experiment sweep experiments/ablation_cells --seeds 0 [--arms lstm,gru]

An experiment folder's config.py declares, next to `get_config()`:

  def sweep():                    # the arms: (name, {dotted key: value})
    return [('lstm', {'model.cell': 'lstm'}),
            ('gru', {'model.cell': 'gru', 'model.hidden_size': 230})]
  SEEDS = (0, 1, 2)               # optional: every arm once per seed
  SMOKE = {'train.num_steps': 3}  # optional (or smoke_overrides()): for --smoke

A string override may name an earlier arm's workdir as '{arm:NAME}' (the
same seed's), e.g. {'train.init_from': '{arm:pretrain}'}: the arm starts from
what that arm trained. An arm may also set 'seed' itself; entries with the same name and different
seeds are one arm, averaged. Each (arm, seed) trains with
`trainer.train_and_evaluate` in `<workdir>/<arm>/seed<k>` (default workdir:
`<experiment>/workdir`). An arm whose results.json exists is skipped, so
re-running a sweep only runs what is missing; an interrupted arm resumes from
its latest checkpoint through the normal resume.

The config of an arm is get_config(), then the arm's overrides, then (with
--smoke) DEFAULT_SMOKE and the experiment's SMOKE: a tiny model, a few steps,
capped data, so that the whole machinery runs in seconds. Smoke runs go to
`<workdir>/_smoke/` and never mix with real runs.

Outputs (rnnlm_jax.report): results.md (one row per arm: parameters, valid and
test perplexity, or bits/char for char-level data, mean ± std over seeds, wall
time, tokens/s, seeds) and learning_curves.png (validation metric vs step).
They are written to the experiment folder for a full sweep in the default
workdir, otherwise to the sweep's workdir.
"""

import dataclasses
import importlib.util
import inspect
import json
import os
import re
import sys
import time
from typing import Any, Callable, Mapping, Sequence

# Tiny settings for --smoke, applied after the arm's overrides (so arms still
# differ in what the smoke settings leave alone: cell, dropout, type, ...).
# Model keys of both model types are set; the unused ones are ignored.
DEFAULT_SMOKE = {
    'train.num_steps': 4,
    'train.batch_size': 4,
    'train.seq_len': 8,
    'train.log_every_steps': 2,
    'train.eval_every_steps': 2,
    'train.progress_bar': False,
    'data.max_train_tokens': 4000,
    'data.max_eval_tokens': 160,
    'model.num_layers': 1,
    'model.hidden_size': 16,
    'model.embed_size': 16,
    'model.unroll': 1,
    'model.transformer.d_model': 16,
    'model.transformer.num_heads': 2,
    'model.transformer.mlp_dim': 32,
    'model.transformer.memory_len': 8,
    'model.transformer.max_len': 32,
    'eval.batch_size': 4,
    'eval.test_batch_size': 4,
    'eval.seq_len': 0,
    'generate.length': 5,
}
SMOKE_DIR = '_smoke'
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+=-]*$')
_ARM_REF = re.compile(r'\{arm:([^}]*)\}')


@dataclasses.dataclass(frozen=True)
class Arm:
  """One training run of a sweep: arm `name` with `seed`."""
  name: str
  seed: int
  overrides: Mapping[str, Any]

  @property
  def subdir(self) -> str:
    return os.path.join(self.name, f'seed{self.seed}')


def experiment_dir(path: str) -> str:
  """The experiment folder from the folder itself or its config.py."""
  path = os.path.abspath(path.split(':')[0])
  if os.path.isfile(path):
    path = os.path.dirname(path)
  if not os.path.isfile(os.path.join(path, 'config.py')):
    raise FileNotFoundError(f'{path} has no config.py: not an experiment folder')
  return path


def load_module(config_path: str):
  """Imports an experiment's config.py (by path: experiments is no package)."""
  config_path = os.path.abspath(config_path)
  name = 'rnnlm_jax_experiment_' + re.sub(r'\W', '_', config_path)
  if name in sys.modules:
    return sys.modules[name]
  spec = importlib.util.spec_from_file_location(name, config_path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  try:
    spec.loader.exec_module(module)
  except BaseException:
    del sys.modules[name]
    raise
  return module


def _call(fn: Callable, smoke: bool):
  """fn(smoke=smoke) if fn takes `smoke`, else fn()."""
  return fn(smoke=smoke) if 'smoke' in inspect.signature(fn).parameters else fn()


def arms(module, smoke: bool = False) -> list[Arm]:
  """The (arm, seed) runs the experiment module declares."""
  if not hasattr(module, 'sweep'):
    raise ValueError(f'{module.__file__} has no sweep() listing the arms')
  seeds = getattr(module, 'SEEDS', getattr(module, 'seeds', None))
  base_seed = module.get_config().seed
  runs, seen = [], set()
  for entry in _call(module.sweep, smoke):
    name, overrides = entry
    if not isinstance(name, str) or not _NAME.match(name) or name == SMOKE_DIR:
      raise ValueError(f'sweep arm name {name!r} must be a plain file name '
                       '(letters, digits, _ . + = -)')
    overrides = dict(overrides)
    if 'seed' in overrides:
      arm_seeds = [int(overrides.pop('seed'))]
    else:
      arm_seeds = [int(s) for s in seeds] if seeds is not None else [base_seed]
    for seed in arm_seeds:
      if (name, seed) in seen:
        raise ValueError(f'sweep arm {name!r} seed {seed} is listed twice')
      seen.add((name, seed))
      runs.append(Arm(name, seed, overrides))
  if not runs:
    raise ValueError(f'{module.__file__}: sweep() returned no arms')
  return runs


def smoke_overrides(module) -> dict[str, Any]:
  extra = getattr(module, 'SMOKE', None)
  if extra is None and hasattr(module, 'smoke_overrides'):
    extra = module.smoke_overrides()
  return {**DEFAULT_SMOKE, **(extra or {})}


def apply_overrides(config, overrides: Mapping[str, Any], where: str) -> None:
  """Sets dotted keys on a locked ConfigDict; unknown keys name `where`."""
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    try:
      for part in parents:
        node = node[part]
      if leaf not in node:
        raise KeyError(leaf)
      node[leaf] = tuple(value) if isinstance(value, list) else value
    except (KeyError, AttributeError, TypeError) as e:
      raise ValueError(f'{where}: cannot set {key}={value!r} ({e})') from None


def resolve_arm_refs(planned: Sequence[Arm], root: str) -> list[Arm]:
  """The arms with '{arm:NAME}' in string overrides replaced by the workdir
  of arm NAME with the same seed, which must come earlier in the sweep."""
  resolved, done = [], set()
  for arm in planned:
    def path_of(match, arm=arm):
      name = match.group(1)
      if (name, arm.seed) not in done:
        raise ValueError(f'sweep arm {arm.name!r} refers to {{arm:{name}}}: '
                         f'no earlier arm {name!r} with seed {arm.seed}')
      return os.path.join(root, name, f'seed{arm.seed}')
    overrides = {k: _ARM_REF.sub(path_of, v) if isinstance(v, str) else v
                 for k, v in arm.overrides.items()}
    resolved.append(dataclasses.replace(arm, overrides=overrides))
    done.add((arm.name, arm.seed))
  return resolved


def arm_config(module, arm: Arm, smoke: bool = False):
  """get_config() + the arm's overrides (+ the smoke overrides) + its seed."""
  config = module.get_config()
  apply_overrides(config, arm.overrides, f'sweep arm {arm.name!r}')
  if smoke:
    apply_overrides(config, smoke_overrides(module), 'smoke overrides')
  config.seed = arm.seed
  return config


def _validate(config, arm: Arm) -> None:
  from rnnlm_jax import config_checks, models  # pylint: disable=import-outside-toplevel
  try:
    config_checks.validate(config)
    models.validate(config.model)
  except ValueError as e:
    raise ValueError(f'sweep arm {arm.name!r}: {e}') from None


def _read_json(path: str) -> Any | None:
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def run_arm(config, workdir: str, log: Callable[[str], None] = print) -> dict:
  """Trains one (arm, seed) unless its results.json exists; returns its record."""
  results = _read_json(os.path.join(workdir, 'results.json'))
  info = _read_json(os.path.join(workdir, 'sweep.json')) or {}
  if results is not None:
    log(f'[sweep] {workdir}: finished earlier, skipped')
    return {'results': results, 'status': 'skipped', **info}
  import jax  # pylint: disable=import-outside-toplevel
  from rnnlm_jax.training import trainer  # pylint: disable=import-outside-toplevel
  log(f'[sweep] {workdir}: training')
  start = time.perf_counter()
  results = dict(trainer.train_and_evaluate(config, workdir))
  info = {'wall_s': time.perf_counter() - start, 'backend': jax.default_backend(),
          'device_kind': jax.devices()[0].device_kind,
          'device_count': jax.device_count()}
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'sweep.json'), 'w', encoding='utf-8') as f:
      json.dump(info, f, indent=2)
  results.pop('sample', None)
  return {'results': results, 'status': 'ran', **info}


@dataclasses.dataclass
class SweepResult:
  runs: list[dict]  # one per (arm, seed): arm, seed, workdir, status, results, ...
  results_md: str
  curves_png: str


def run_sweep(path: str, *, smoke: bool = False, workdir: str | None = None,
              only: Sequence[str] = (), seeds: Sequence[int] = (),
              log: Callable[[str], None] = print) -> SweepResult:
  """Runs the sweep of the experiment at `path` (folder or its config.py).

  Args:
    smoke: apply the smoke overrides; runs go to `<workdir>/_smoke/`.
    workdir: root of the arms' workdirs (default `<experiment>/workdir`).
    only: run only these arms (the report still lists every finished run).
    seeds: run only these seeds (e.g. one seed per arm on a small machine;
      the report still lists every finished run).
  """
  from rnnlm_jax import report  # pylint: disable=import-outside-toplevel
  exp_dir = experiment_dir(path)
  module = load_module(os.path.join(exp_dir, 'config.py'))
  root = os.path.abspath(workdir or os.path.join(exp_dir, 'workdir'))
  if smoke:
    root = os.path.join(root, SMOKE_DIR)
  planned = resolve_arm_refs(arms(module, smoke), root)
  unknown = set(only) - {a.name for a in planned}
  if unknown:
    raise ValueError(f'--arms: no arm named {sorted(unknown)}; '
                     f'arms: {sorted({a.name for a in planned})}')
  seeds = [int(s) for s in seeds]
  unknown = set(seeds) - {a.seed for a in planned}
  if unknown:
    raise ValueError(f'--seeds: no run has seed {sorted(unknown)}; '
                     f'seeds: {sorted({a.seed for a in planned})}')
  arm_configs = [arm_config(module, arm, smoke) for arm in planned]
  for arm, config in zip(planned, arm_configs):
    _validate(config, arm)  # every arm, before the first one trains
  runs = []
  for i, arm in enumerate(planned):
    arm_dir = os.path.join(root, arm.subdir)
    record = {'arm': arm.name, 'seed': arm.seed, 'workdir': arm_dir}
    if (only and arm.name not in only) or (seeds and arm.seed not in seeds):
      results = _read_json(os.path.join(arm_dir, 'results.json'))
      if results is not None:
        runs.append({**record, 'status': 'skipped', 'results': results,
                     **(_read_json(os.path.join(arm_dir, 'sweep.json')) or {})})
      continue
    log(f'[sweep] arm {i + 1}/{len(planned)}: {arm.name} seed {arm.seed}')
    runs.append({**record, **run_arm(arm_configs[i], arm_dir, log)})
  default_place = not smoke and workdir is None
  out_dir = exp_dir if default_place else root
  title = os.path.basename(exp_dir) + (' (smoke)' if smoke else '')
  md, png = report.write_report(runs, out_dir, title=title, exp_dir=exp_dir,
                                command=_command(exp_dir, smoke))
  log(f'[sweep] wrote {md} and {png}')
  return SweepResult(runs, md, png)


def _command(exp_dir: str, smoke: bool) -> str:
  rel = os.path.relpath(exp_dir)
  if rel.startswith('..'):
    rel = exp_dir
  return f'python -m rnnlm_jax.experiment sweep {rel}' + (' --smoke' if smoke else '')


def positional_experiment(argv: list[str]) -> list[str]:
  """For `sweep`, turns `--config <folder or config.py>` into the positional.

  (config_flags would load the flag's file itself, and a folder is no file.)
  """
  if 'sweep' not in argv[1:2]:
    return argv
  out, i = [], 0
  while i < len(argv):
    arg = argv[i]
    if arg in ('--config', '-config') and i + 1 < len(argv):
      out.append(argv[i + 1])
      i += 2
      continue
    if arg.startswith(('--config=', '-config=')):
      arg = arg.split('=', 1)[1]
    out.append(arg)
    i += 1
  return out
