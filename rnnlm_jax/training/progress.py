"""Progress and interruption: a tqdm bar on a terminal, log lines
everywhere, the log window's device-side sums, and SIGTERM handling.

SIGTERM -> save a checkpoint at the current step and stop cleanly.
Preemptible TPU VMs and shared GPU schedulers send SIGTERM before killing a
job. On one process a signal handler sets a flag that the loop polls once per
step. On several, every process must stop at the *same* step (checkpoint
saves are collective), so JAX's preemption sync point (from
jax.distributed.initialize) decides instead, as Orbax's preemption support does.
"""

import math
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import tqdm
from absl import logging
from jax.experimental import multihost_utils


class Progress:
  """A bar with tokens/s and ETA when stderr is a terminal; silent otherwise."""

  def __init__(self, total: int, initial: int, enabled: bool = True):
    show = enabled and sys.stderr.isatty() and jax.process_index() == 0
    self._bar = tqdm.tqdm(total=total, initial=initial, unit='step',
                          dynamic_ncols=True, disable=not show)

  def update(self, step: int, tokens_per_second: float | None) -> None:
    self._bar.update(step - self._bar.n)
    if tokens_per_second:
      self._bar.set_postfix_str(f'{tokens_per_second:,.0f} tok/s', refresh=False)

  def log(self, line: str) -> None:
    """A log line that does not tear the bar."""
    if self._bar.disable:
      logging.info(line)
    else:
      self._bar.write(line)

  def close(self) -> None:
    self._bar.close()


class LogWindow:
  """Accumulates step metrics on the device between log lines.

  Adding device scalars is asynchronous, so the loop never waits for the
  device except when a log line fetches the sums (`flush`).
  """

  def __init__(self):
    self._last_rate = None
    # Real (unmasked) tokens of the windows flushed by this process, for the
    # run's throughput; a restored window's earlier tokens are not counted.
    self.flushed_tokens = 0.0
    self._restored_tokens = 0.0
    self._reset()

  def _reset(self) -> None:
    self._start_time = time.perf_counter()
    self._sums = None
    self._steps = 0

  def add(self, step_metrics: dict) -> None:
    ok = 1.0 - step_metrics['skipped']  # keep NaN steps out of the averages
    weighted = {'nll': jnp.where(ok > 0, step_metrics['loss'], 0.0) * step_metrics['tokens'],
                'tokens': step_metrics['tokens'] * ok,
                'grad_norm': jnp.where(ok > 0, step_metrics['grad_norm'], 0.0),
                'skipped': step_metrics['skipped']}
    self._sums = weighted if self._sums is None else jax.tree.map(
        jnp.add, self._sums, weighted)
    self._steps += 1

  def snapshot(self) -> dict:
    """The partial sums as JSON-able floats, saved with a checkpoint so a
    resumed run logs the same window averages as an unbroken one."""
    sums = {} if self._sums is None else {
        k: float(v) for k, v in jax.device_get(self._sums).items()}
    return {'sums': sums, 'steps': self._steps}

  def restore(self, snapshot: dict | None) -> None:
    if not snapshot or not snapshot['sums']:
      return
    # float32 again, so the remaining additions round exactly as before.
    self._sums = {k: jnp.asarray(v, jnp.float32) for k, v in snapshot['sums'].items()}
    self._steps = snapshot['steps']
    self._restored_tokens = float(snapshot['sums']['tokens'])

  def tokens_per_second(self) -> float | None:
    return self._last_rate

  def flush(self) -> dict[str, float]:
    sums = jax.device_get(self._sums)  # waits for the steps so far
    elapsed = time.perf_counter() - self._start_time
    loss = float(sums['nll'] / max(sums['tokens'], 1.0))
    self._last_rate = float(sums['tokens']) / max(elapsed, 1e-9)
    self.flushed_tokens += float(sums['tokens']) - self._restored_tokens
    self._restored_tokens = 0.0
    scalars = {'loss': loss, 'ppl': math.exp(min(loss, 700.0)),
               'grad_norm': float(sums['grad_norm']) / max(self._steps - sums['skipped'], 1),
               'skipped_steps': float(sums['skipped']),
               'tokens_per_s': self._last_rate,
               'steps_per_s': self._steps / max(elapsed, 1e-9)}
    self._reset()
    return scalars


EXIT_CODE = 128 + signal.SIGTERM  # the shell's convention for "terminated"


class Preempted(Exception):
  """The run was asked to stop; a checkpoint of `step` has been saved."""

  def __init__(self, step: int):
    super().__init__(f'preempted (SIGTERM) at step {step}: checkpoint saved; '
                     're-run the same command to resume')
    self.step = step


class PreemptionGuard:
  """Installs the SIGTERM handler for the duration of training."""

  def __init__(self):
    self._requested = False
    self._previous = None
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame) -> None:
    del signum, frame
    self._requested = True

  def requested(self, step: int) -> bool:
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._requested

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
