"""Orbax checkpoints of a run: the latest N by step, and the best by validation.

Knows nothing of models: it stores pytrees of arrays (the train state, the
carried hidden state) and a JSON dict of loop metadata (data position, best
validation loss, ...). Saves are asynchronous; `wait()` before reading back.
"""

import os
from typing import Any, Iterator, NamedTuple

import jax
import orbax.checkpoint as ocp
from absl import logging

ITEMS = ('state', 'carry', 'meta')


class Restored(NamedTuple):
  step: int
  state: Any
  carry: Any
  meta: dict


class CheckpointError(RuntimeError):
  """No usable checkpoint where one was required."""


def _manager(directory: str, max_to_keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(directory, options=options, item_names=ITEMS)


def _abstract(tree: Any) -> Any:
  """Shapes, dtypes and shardings of `tree`: restore lays arrays out the same."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpointer:
  """`workdir/checkpoints` (latest `keep`) and `workdir/best` (one)."""

  def __init__(self, workdir: str, keep: int = 2):
    # Paths may be gs://...; only make local ones absolute (Orbax wants that).
    if '://' not in workdir:
      workdir = os.path.abspath(workdir)
    self._managers = {
        'latest': _manager(os.path.join(workdir, 'checkpoints'), max(keep, 1)),
        'best': _manager(os.path.join(workdir, 'best'), 1),
    }

  def save(self, step: int, state: Any, carry: Any, meta: dict,
           which: str = 'latest') -> None:
    """Saves asynchronously. A step already on disk is left as it is: a run
    resumed from an earlier checkpoint recomputes the same state for it."""
    if step in self._managers[which].all_steps():
      return
    self._one_save_at_a_time()
    parts = dict(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    if jax.tree.leaves(carry):  # an encoder-decoder carries nothing
      parts['carry'] = ocp.args.StandardSave(carry)
    self._managers[which].save(step, args=ocp.args.Composite(**parts),
                               force=True)

  def steps(self, which: str = 'latest') -> list[int]:
    return sorted(self._managers[which].all_steps())

  def restore(self, state_like: Any, carry_like: Any,
              which: str = 'latest') -> Restored | None:
    """The newest readable checkpoint of `which`, or None if there is none.

    `state_like`/`carry_like` give the structure, shapes and shardings to
    restore into (e.g. a freshly initialized state). A checkpoint that fails
    to read (truncated, garbled) is skipped with a warning naming it, and the
    one before it is tried; nothing is deleted.
    """
    return next(self.restore_all(state_like, carry_like, which), None)

  def restore_all(self, state_like: Any, carry_like: Any,
                  which: str = 'latest') -> Iterator[Restored]:
    """Every readable checkpoint of `which`, newest first, one at a time
    (unreadable ones skipped with a warning, as in `restore`)."""
    manager = self._managers[which]
    manager.wait_until_finished()
    self._one_save_at_a_time()
    parts = dict(state=ocp.args.StandardRestore(_abstract(state_like)),
                 meta=ocp.args.JsonRestore())
    if jax.tree.leaves(carry_like):
      parts['carry'] = ocp.args.StandardRestore(_abstract(carry_like))
    args = ocp.args.Composite(**parts)
    for step in sorted(manager.all_steps(), reverse=True):
      try:
        out = manager.restore(step, args=args)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('skipping unreadable %s checkpoint at step %d in %s: %s',
                        which, step, manager.directory, _one_line(e))
        continue
      carry = out.carry if 'carry' in parts else carry_like
      yield Restored(step, out.state, carry, dict(out.meta))

  def _one_save_at_a_time(self) -> None:
    """Multi-host: finish the other manager's save before starting anything.

    Orbax's multi-host save finalization meets the other processes at
    barriers whose names are not unique per CheckpointManager, so a `best`
    save finishing while a `latest` one does (both happen at an evaluation
    step) fails with "Barrier ... is already ongoing". One process: no wait.
    """
    if jax.process_count() > 1:
      self.wait()

  def wait(self) -> None:
    for manager in self._managers.values():
      manager.wait_until_finished()

  def close(self) -> None:
    for manager in self._managers.values():
      manager.close()


def _one_line(error: Exception) -> str:
  text = f'{type(error).__name__}: {error}'
  return text.splitlines()[0][:300]
