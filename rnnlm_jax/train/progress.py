"""Progress reporting: a tqdm bar on a terminal, log lines everywhere."""

import math
import sys
import time

import jax
import jax.numpy as jnp
import tqdm
from absl import logging


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


class Window:
  """Accumulates step metrics on the device between log lines.

  Adding device scalars is asynchronous, so the loop never waits for the
  device except when a log line fetches the sums (`flush`).
  """

  def __init__(self, step: int):
    self._last_rate = None
    self._reset(step)

  def _reset(self, step: int) -> None:
    self._start_step = step
    self._start_time = time.perf_counter()
    self._sums = None
    self._steps = 0

  def add(self, step_metrics: dict) -> None:
    weighted = {'nll': step_metrics['loss'] * step_metrics['tokens'],
                'tokens': step_metrics['tokens'],
                'grad_norm': step_metrics['grad_norm']}
    self._sums = weighted if self._sums is None else jax.tree.map(
        jnp.add, self._sums, weighted)
    self._steps += 1

  def tokens_per_second(self) -> float | None:
    return self._last_rate

  def flush(self, step: int) -> dict[str, float]:
    sums = jax.device_get(self._sums)  # waits for the steps so far
    elapsed = time.perf_counter() - self._start_time
    loss = float(sums['nll'] / max(sums['tokens'], 1.0))
    self._last_rate = float(sums['tokens']) / max(elapsed, 1e-9)
    scalars = {'loss': loss, 'ppl': math.exp(min(loss, 700.0)),
               'grad_norm': float(sums['grad_norm']) / self._steps,
               'tokens_per_s': self._last_rate,
               'steps_per_s': self._steps / max(elapsed, 1e-9)}
    self._reset(step)
    return scalars
