"""The loop's validation decisions: the best step by train.best_metric, and
early stopping."""

from rnnlm_jax.training.bookkeeping import Bookkeeping, is_gain, record


def test_gain_is_lower_loss_or_higher_bleu():
  book = Bookkeeping(best_valid_loss=2.0, best_value=30.0)
  assert is_gain(book, {'bleu': 31.0, 'loss': 3.0}, 'bleu')
  assert not is_gain(book, {'bleu': 29.0, 'loss': 1.0}, 'bleu')
  loss_book = Bookkeeping(best_valid_loss=2.0, best_value=2.0)
  assert is_gain(loss_book, {'loss': 1.5}, 'loss')
  assert not is_gain(loss_book, {'loss': 2.5}, 'loss')
  # A checkpoint saved before best_value existed: the loss decides.
  assert is_gain(Bookkeeping(best_valid_loss=2.0), {'loss': 1.9}, 'loss')
  assert not is_gain(Bookkeeping(best_valid_loss=2.0), {'loss': 2.1}, 'loss')
  assert is_gain(Bookkeeping(), {'bleu': 0.0, 'loss': 9.0}, 'bleu')


def test_record_tracks_the_best_and_stops_after_patience():
  book = Bookkeeping()
  history = [(10, 20.0), (20, 25.0), (30, 24.0), (40, 25.0), (50, 30.0)]
  flags = []
  for step, bleu in history:
    book, best = record(book, {'loss': 1.0 / bleu, 'bleu': bleu}, step, 'bleu', 3)
    flags.append(best)
  assert flags == [True, True, False, False, True]  # a tie is no gain
  assert (book.best_step, book.best_value, book.evals_without_gain) == (50, 30.0, 0)
  assert book.best_valid_loss == 1.0 / 30.0
  for step in (60, 70):
    book, _ = record(book, {'loss': 1.0, 'bleu': 1.0}, step, 'bleu', 3)
  assert not book.stopped_early
  book, _ = record(book, {'loss': 1.0, 'bleu': 1.0}, 80, 'bleu', 3)
  assert book.stopped_early and book.best_step == 50
  never, _ = record(Bookkeeping(best_value=5.0), {'loss': 9.0, 'bleu': 1.0},
                    1, 'bleu', 0)
  assert not never.stopped_early


def test_from_meta_ignores_keys_of_other_versions():
  book = Bookkeeping.from_meta({'best_valid_loss': 1.5, 'best_step': 7,
                                'step': 9, 'log_window': {}})
  assert (book.best_valid_loss, book.best_step, book.best_value) == (1.5, 7, None)
