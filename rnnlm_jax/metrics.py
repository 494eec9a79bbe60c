"""Metrics to JSONL (always) and TensorBoard (when tensorboardX is installed).

Only process 0 writes; other processes get a writer that drops everything.
"""

import json
import os
from typing import Any

import jax
from absl import logging


class MetricWriter:
  """Appends `{"step": s, "split": ..., **scalars}` lines to workdir/metrics.jsonl."""

  def __init__(self, workdir: str, resume_step: int = 0,
               enabled: bool | None = None):
    """`resume_step`: drop lines logged after it by a run that was killed
    before its next checkpoint, so a resumed run's log equals an unbroken one."""
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._jsonl = None
    self._tb = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, 'metrics.jsonl')
    _truncate_after(path, resume_step)
    self._jsonl = open(path, 'a', encoding='utf-8')
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    except ImportError:
      logging.info('tensorboardX not installed: metrics go to metrics.jsonl only')
    else:
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, split: str, scalars: dict[str, Any]) -> None:
    if not self.enabled:
      return
    values = {k: float(v) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({'step': int(step), 'split': split, **values}) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for name, value in values.items():
        self._tb.add_scalar(f'{split}/{name}', value, int(step))

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def read_jsonl(path: str) -> list[dict]:
  return [json.loads(line) for line in read_lines(path)]


def _truncate_after(path: str, step: int) -> None:
  if not os.path.exists(path):
    return
  kept = [line for line in read_lines(path) if json.loads(line)['step'] <= step]
  with open(path, 'w', encoding='utf-8') as f:
    f.writelines(kept)


def read_lines(path: str) -> list[str]:
  """Complete lines only: a line cut by a kill mid-write is dropped."""
  with open(path, encoding='utf-8') as f:
    return [line for line in f if line.endswith('\n') and line.strip()]
