"""A sweep's report: a markdown table of its arms and a learning-curve plot.

Input: the sweep's runs, one dict per (arm, seed) with 'arm', 'seed',
'workdir', 'results' (the run's results.json) and optionally 'wall_s'.
Runs of the same arm are aggregated: mean ± sample std over seeds.
"""

import datetime
import json
import math
import os
from typing import Any, Sequence

import numpy as np


def metric_of(level: str) -> tuple[str, str]:
  """(results key suffix, label): perplexity for words, bits/char for chars."""
  return ('bits', 'bits/char') if level == 'char' else ('ppl', 'ppl')


def mean_std(values: Sequence[float], digits: int = 2) -> str:
  values = [float(v) for v in values if v is not None]
  if not values:
    return 'n/a'
  mean = float(np.mean(values))
  if len(values) == 1:
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {float(np.std(values, ddof=1)):.{digits}f}'


def format_seconds(seconds: float | None) -> str:
  if seconds is None or not math.isfinite(seconds):
    return 'n/a'
  if seconds < 120:
    return f'{seconds:.1f} s'
  minutes = seconds / 60
  return f'{minutes:.1f} min' if minutes < 120 else f'{minutes / 60:.2f} h'


def group(runs: Sequence[dict]) -> dict[str, list[dict]]:
  """Runs by arm name, in first-appearance order."""
  arms: dict[str, list[dict]] = {}
  for run in runs:
    arms.setdefault(run['arm'], []).append(run)
  return arms


# Score columns shown when some arm's results.json has them: (header, key).
OPTIONAL_COLUMNS = (
    # seq2seq: lower-cased test BLEU of greedy and beam decoding
    ('test BLEU greedy', 'test_greedy_bleu_lowercase'),
    ('test BLEU beam', 'test_beam_bleu_lowercase'),
    # seq2seq / instruct: the response NLL per character of text, comparable
    # across tokenizers (the ppl columns are per token of each arm's own)
    ('valid bits/char', 'valid_bits_per_char'),
    ('test bits/char', 'test_bits_per_char'),
    # generated responses to instructions (code): greedy decoding on test
    ('test exact match %', 'test_greedy_exact_match'),
    ('test chrF', 'test_greedy_chrf'),
    ('test BLEU', 'test_greedy_bleu'),
    ('test parses %', 'test_greedy_parse_rate'),
)


def only_evaluated(results: dict) -> bool:
  """Whether the invocation that wrote `results` only evaluated (training
  had finished before a restart): its time and throughput say nothing."""
  return results.get('tokens_trained_this_invocation', 1) == 0


def wall_seconds(run: dict, results: dict) -> float | None:
  """The run's time over all its invocations where results.json has it (runs
  of older code: its last invocation's time)."""
  if 'train_seconds' in results:
    return results['train_seconds']
  if only_evaluated(results):
    return None
  return run.get('wall_s', results.get('train_seconds_this_invocation'))


def table_rows(runs: Sequence[dict]) -> list[dict[str, Any]]:
  """One aggregated row per arm (numbers, not strings)."""
  rows = []
  for arm, arm_runs in group(runs).items():
    results = [r['results'] for r in arm_runs]
    timed = [res for res in results if not only_evaluated(res)]
    key, label = metric_of(results[0].get('level', 'word'))
    digits = 3 if key == 'bits' else 2
    rows.append({
        'arm': arm,
        'params': results[0].get('num_params'),
        'metric': label,
        'valid': [r.get(f'valid_{key}') for r in results],
        'test': [r.get(f'test_{key}') for r in results],
        'digits': digits,
        'wall_s': _mean([wall_seconds(r, res) for r, res in zip(arm_runs, results)]),
        'tokens_per_s': _mean([res.get('tokens_per_s_this_invocation')
                               for res in timed]),
        'seeds': sorted(r['seed'] for r in arm_runs),
        'scores': {key: [r.get(key) for r in results]
                   for _, key in OPTIONAL_COLUMNS},
    })
  return rows


def _mean(values) -> float | None:
  values = [float(v) for v in values if v is not None]
  return float(np.mean(values)) if values else None


def markdown_table(runs: Sequence[dict]) -> str:
  rows = table_rows(runs)
  labels = {row['metric'] for row in rows}
  label = labels.pop() if len(labels) == 1 else 'ppl or bits/char'
  shown = [(header, key) for header, key in OPTIONAL_COLUMNS
           if any(v is not None for row in rows for v in row['scores'][key])]
  extra = ''.join(f' {header} |' for header, _ in shown)
  lines = [f'| arm | params | valid {label} | test {label} |{extra} wall time | tokens/s | seeds |',
           '| --- | ---: | ---: | ---: |' + ' ---: |' * len(shown)
           + ' ---: | ---: | ---: |']
  for row in rows:
    params = f'{row["params"]:,}' if row['params'] is not None else 'n/a'
    tps = f'{row["tokens_per_s"]:,.0f}' if row['tokens_per_s'] is not None else 'n/a'
    scores = ''.join(f' {mean_std(row["scores"][key])} |' for _, key in shown)
    lines.append(
        f'| {row["arm"]} | {params} | {mean_std(row["valid"], row["digits"])} | '
        f'{mean_std(row["test"], row["digits"])} |{scores} {format_seconds(row["wall_s"])} | '
        f'{tps} | {len(row["seeds"])} |')
  if any(key.endswith('_bleu_lowercase') for _, key in shown):
    lines.append('\nBLEU: sacreBLEU, lower-cased (the anchor\'s protocol), on '
                 'test; the cased scores and signatures are in each results.json.')
  return '\n'.join(lines) + '\n'


def metric_curve(workdir: str, split: str, key: str) -> dict[int, float]:
  """{step: metric} of one split ('valid' or 'train') from a run's
  metrics.jsonl; torn lines skipped. Bits are derived from the loss where
  the entry has none (training entries log loss and ppl only)."""
  path = os.path.join(workdir, 'metrics.jsonl')
  curve = {}
  if not os.path.exists(path):
    return curve
  with open(path, encoding='utf-8') as f:
    for line in f:
      try:
        entry = json.loads(line)
      except json.JSONDecodeError:
        continue
      if entry.get('split') != split:
        continue
      if key in entry:
        curve[int(entry['step'])] = float(entry[key])
      elif key == 'bits' and 'loss' in entry:
        curve[int(entry['step'])] = float(entry['loss']) / math.log(2)
  return curve


def _seed_mean(curves: list[dict[int, float]]) -> tuple[list[int], list[float]]:
  """The mean over seeds at the steps every seed has."""
  steps = sorted(set.intersection(*(set(c) for c in curves)))
  return steps, [float(np.mean([c[s] for c in curves])) for s in steps]


def plot_learning_curves(runs: Sequence[dict], path: str, title: str = '') -> str:
  """Validation (solid, markers) and training (dashed, with dropout) ppl or
  bits/char vs step, one colour per arm, one panel per metric: a sweep over
  word- and character-level corpora gets a ppl panel and a bits/char panel.
  Several seeds: their mean, the single seeds as thin lines."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  panels: dict[str, list] = {}  # label -> [(arm, runs, key)]
  for arm, arm_runs in group(runs).items():
    key, label = metric_of(arm_runs[0]['results'].get('level', 'word'))
    panels.setdefault(label, []).append((arm, arm_runs, key))
  labels = sorted(panels, reverse=True) or ['ppl']  # ppl first
  fig = Figure(figsize=(7 * len(labels), 4.5), dpi=100)
  FigureCanvasAgg(fig)  # the Agg backend, whatever pyplot's default is
  for i, label in enumerate(labels):
    ax = fig.add_subplot(1, len(labels), i + 1)
    for n, (arm, arm_runs, key) in enumerate(panels.get(label, [])):
      color = f'C{n % 10}'
      for split, style in (('valid', dict(marker='o', ms=3)),
                           ('train', dict(ls='--', lw=1, alpha=0.6))):
        curves = [c for c in (metric_curve(r['workdir'], split, key)
                              for r in arm_runs) if c]
        if not curves:
          continue
        if len(curves) > 1 and split == 'valid':
          for c in curves:
            ax.plot(sorted(c), [c[s] for s in sorted(c)], color=color,
                    lw=0.5, alpha=0.4)
        steps, mean = _seed_mean(curves)
        name = f'{arm} (n={len(curves)})' if split == 'valid' else None
        ax.plot(steps, mean, color=color, label=name, **style)
    ax.set_xlabel('step')
    ax.set_ylabel(label + ' (solid: validation, dashed: training)')
    if label == 'ppl':
      ax.set_yscale('log')
    ax.set_title(title or 'learning curves')
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize='small')
  fig.tight_layout()
  fig.savefig(path, format='png')
  return path


def write_report(runs: Sequence[dict], out_dir: str, *, title: str,
                 exp_dir: str, command: str) -> tuple[str, str]:
  """Writes results.md and learning_curves.png into out_dir; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  png = os.path.join(out_dir, 'learning_curves.png')
  plot_learning_curves(runs, png, title)
  hardware = sorted({f'{r.get("device_count", "?")} x {r.get("device_kind", "?")} '
                     f'({r.get("backend", "?")})' for r in runs if 'backend' in r})
  lines = [
      f'# {title}: sweep results', '',
      f'Generated by `{command}` on {datetime.date.today().isoformat()}; '
      f'{len(runs)} run(s) of {len(group(runs))} arm(s). Mean ± sample std over '
      'seeds; test numbers use eval.test_batch_size. Wall time: training, '
      'evaluations and compiles over every invocation of a run (runs that '
      'predate the run clock: the invocation that finished it; n/a where that '
      'one only evaluated), mean over seeds; tokens/s: training throughput of '
      'the invocation that finished each run.',
      '',
      'Hardware: ' + ('; '.join(hardware) if hardware else 'not recorded') + '.',
      '',
      markdown_table(runs),
      f'![validation learning curves]({os.path.relpath(png, out_dir)})', '',
      'Workdirs: ' + ', '.join(
          f'`{os.path.relpath(r["workdir"], exp_dir)}`' for r in runs), '',
  ]
  md = os.path.join(out_dir, 'results.md')
  with open(md, 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines))
  return md, png
