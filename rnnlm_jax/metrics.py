"""Metrics to JSONL (always) and TensorBoard (when tensorboardX is installed).

Only process 0 writes; other processes get a writer that drops everything.

Local workdirs append to metrics.jsonl. Remote ones (gs://..., via etils.epath)
cannot append, so the whole file is rewritten at each write (a few KB: one line
per log interval), and TensorBoard events go to a local directory that is
copied into <workdir>/tensorboard when the writer closes.
"""

import json
import os
import tempfile
from typing import Any

import jax
from absl import logging
from etils import epath


def is_remote(path: str) -> bool:
  return '://' in str(path)


class MetricWriter:
  """Appends `{"step": s, "split": ..., **scalars}` lines to workdir/metrics.jsonl."""

  def __init__(self, workdir: str, resume_step: int = 0,
               enabled: bool | None = None):
    """`resume_step`: drop lines logged after it by a run that was killed
    before its next checkpoint, so a resumed run's log equals an unbroken one."""
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._jsonl = None
    self._remote_lines = None  # remote workdirs: every line, rewritten per write
    self._tb = None
    self._tb_local = self._tb_remote = None
    if not self.enabled:
      return
    remote = is_remote(workdir)
    epath.Path(workdir).mkdir(parents=True, exist_ok=True)
    self._path = epath.Path(workdir) / 'metrics.jsonl'
    kept = _truncate_after(self._path, resume_step)
    if remote:
      self._remote_lines = kept
    else:
      self._jsonl = open(self._path, 'a', encoding='utf-8')
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    except ImportError:
      logging.info('tensorboardX not installed: metrics go to metrics.jsonl only')
      return
    if remote:
      self._tb_local = tempfile.mkdtemp(prefix='rnnlm_jax_tensorboard_')
      self._tb_remote = epath.Path(workdir) / 'tensorboard'
      logging.info('TensorBoard events are written to %s and copied to %s at '
                   'the end (metrics.jsonl is written as it goes)',
                   self._tb_local, self._tb_remote)
      self._tb = SummaryWriter(self._tb_local)
    else:
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, split: str, scalars: dict[str, Any]) -> None:
    if not self.enabled:
      return
    values = {k: float(v) for k, v in scalars.items()}
    line = json.dumps({'step': int(step), 'split': split, **values}) + '\n'
    if self._jsonl is not None:
      self._jsonl.write(line)
      self._jsonl.flush()
    else:
      self._remote_lines.append(line)
      self._path.write_text(''.join(self._remote_lines))
    if self._tb is not None:
      for name, value in values.items():
        self._tb.add_scalar(f'{split}/{name}', value, int(step))

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()
      self._tb = None
      if self._tb_local is not None:
        _copy_tree(epath.Path(self._tb_local), self._tb_remote)


def _copy_tree(source: epath.Path, target: epath.Path) -> None:
  target.mkdir(parents=True, exist_ok=True)
  for item in source.iterdir():
    if item.is_dir():
      _copy_tree(item, target / item.name)
    else:
      (target / item.name).write_bytes(item.read_bytes())


def read_jsonl(path: str) -> list[dict]:
  return [json.loads(line) for line in read_lines(path)]


def _keep_on_resume(record: dict, step: int) -> bool:
  # Final evaluations are redone by every invocation that reaches the end.
  return record['step'] <= step and not record['split'].startswith('final_')


def _truncate_after(path: epath.Path, step: int) -> list[str]:
  """Drops lines a resumed run will write again; returns the lines kept."""
  if not path.exists():
    return []
  kept = [line for line in read_lines(path)
          if _keep_on_resume(json.loads(line), step)]
  path.write_text(''.join(kept))
  return kept


def read_lines(path) -> list[str]:
  """Complete lines only: a line cut by a kill mid-write is dropped."""
  text = epath.Path(path).read_text(encoding='utf-8')
  *complete, _torn = text.split('\n')
  return [line + '\n' for line in complete if line.strip()]
