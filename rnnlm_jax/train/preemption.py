"""SIGTERM -> save a checkpoint at the current step and stop cleanly.

Preemptible TPU VMs and shared GPU schedulers send SIGTERM before killing a
job. On one process a signal handler sets a flag that the loop polls once per
step. On several, every process must stop at the *same* step (checkpoint
saves are collective), so JAX's preemption sync point (from
jax.distributed.initialize) decides instead, as Orbax's preemption support does.
"""

import signal
import threading

import jax
from jax.experimental import multihost_utils

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
