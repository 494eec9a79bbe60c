"""What the training loop decides from each validation result: the best
step, early stopping. Pure functions of the saved Bookkeeping (restored
with every checkpoint, so a resumed run decides as the unbroken one)."""

import dataclasses

from absl import logging


@dataclasses.dataclass
class Bookkeeping:
  """What the loop decides from validation; saved with every checkpoint.
  best_value: train.best_metric at the best step (best_valid_loss: the loss
  there)."""
  best_valid_loss: float | None = None
  best_value: float | None = None
  best_step: int | None = None
  evals_without_gain: int = 0
  stopped_early: bool = False  # early stopping, or fine-tuning's rule
  ntasgd_history: list = dataclasses.field(default_factory=list)

  @classmethod
  def from_meta(cls, meta: dict) -> 'Bookkeeping':
    """From a checkpoint's metadata (keys of other versions are ignored)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in meta.items() if k in fields})


def is_gain(book: Bookkeeping, result: dict, metric: str) -> bool:
  """Whether `result` beats the best so far by `metric` ('loss': lower is
  better; any other: higher)."""
  best = book.best_value
  if best is None and metric == 'loss':  # a checkpoint from before best_value
    best = book.best_valid_loss
  if best is None:
    return True
  return result[metric] < best if metric == 'loss' else result[metric] > best


def record(book: Bookkeeping, result: dict, step: int, metric: str,
           patience: int) -> tuple[Bookkeeping, bool]:
  """(the book after validation `result` at `step`, whether it is the new
  best); `patience` evaluations without a gain stop the run (0: never)."""
  if is_gain(book, result, metric):
    return dataclasses.replace(book, best_valid_loss=result['loss'],
                               best_value=result[metric], best_step=step,
                               evals_without_gain=0), True
  book = dataclasses.replace(book, evals_without_gain=book.evals_without_gain + 1)
  if patience and book.evals_without_gain >= patience:
    book = dataclasses.replace(book, stopped_early=True)
    logging.info('early stopping: no validation gain in %d evaluations', patience)
  return book, False
