"""The batching policy of a training run: which batches make epoch e.

`EpochPlan` answers the two questions the training loop asks, from the data
config and the corpus alone: how many steps an epoch has, and the batches of
epoch e from batch `start` on (this process's `rows` of each). Three policies,
chosen by the config:

  stream     contiguous TBPTT windows of train.seq_len (data.batching);
  sentence   one padded, masked sentence per row, shuffled per epoch
             (data.sentences);
  variable   AWD-LSTM's variable BPTT lengths (data.variable_bptt); each
             epoch runs until its rows are used up, so epochs differ in
             length and `locate` maps a global step to (epoch, start).

Every epoch's batches are a pure function of (config, epoch), so a resumed run
reads the same batches from the same step. `PairPlan` is the same for
sentence pairs (the encoder-decoder task), `InstructPlan` for prompt-masked
instruction rows (the decoder-only 'instruct' task).
"""

import dataclasses
import functools
from typing import Any, Iterator

from rnnlm_jax.data import batching, instruct, paired, paired_batching
from rnnlm_jax.data import sentences
from rnnlm_jax.data import variable_bptt
from rnnlm_jax.data.batching import Batch
from rnnlm_jax.data.corpus import Corpus
from rnnlm_jax.data.errors import DataError


class _Epochs:
  """Step <-> epoch arithmetic, delegated to the plan's `_epochs`
  (variable_bptt.FixedEpochs or VariableEpochs)."""

  @property
  def steps_per_epoch(self) -> int:
    """Epoch 0's steps (every epoch's, but under variable BPTT), for the
    learning-rate schedule."""
    return self._epochs.steps_in_epoch(0)

  def steps_in_epoch(self, epoch: int) -> int:
    return self._epochs.steps_in_epoch(epoch)

  def first_step(self, epoch: int) -> int:
    """The global step epoch `epoch` starts at (= steps of the epochs before)."""
    return self._epochs.first_step(epoch)

  def locate(self, step: int) -> tuple[int, int]:
    """Global step -> (epoch, batch index within it)."""
    return self._epochs.locate(step)

  def epochs_done(self, step: int) -> float:
    """Epochs trained after `step` steps, fractional."""
    epoch, start = self.locate(step)
    return epoch + start / self.steps_in_epoch(epoch)


@dataclasses.dataclass(frozen=True)
class EpochPlan(_Epochs):
  """The training batches of a corpus under one config (see module doc)."""
  config: Any  # the run config (ml_collections.ConfigDict)
  corpus: Corpus

  @functools.cached_property
  def _epochs(self):
    """variable_bptt.FixedEpochs, or VariableEpochs (epochs run until the
    rows are used up, so their step counts differ)."""
    t = self.config.train
    if self.config.data.mode == 'sentence':
      return variable_bptt.FixedEpochs(sentences.num_sentence_batches(
          self.corpus.train, self.corpus.boundary_id, t.batch_size, t.seq_len))
    if t.variable_bptt:
      return variable_bptt.VariableEpochs(
          len(self.corpus.train) // t.batch_size, t.seq_len,
          seed=self.config.seed, p_full=t.bptt_p_full, std=t.bptt_std,
          bucket=t.bptt_bucket)
    return variable_bptt.FixedEpochs(batching.num_bptt_windows(
        len(self.corpus.train), t.batch_size, t.seq_len))

  @property
  def resets_carry(self) -> bool:
    """Whether every batch starts from a zero state (independent sentences)."""
    return self.config.data.mode == 'sentence'

  def batches(self, epoch: int, start: int = 0,
              rows: tuple[int, int] | None = None) -> Iterator[Batch]:
    """Epoch `epoch`'s batches from batch `start` on, rows [a, b) of each."""
    t, stream = self.config.train, self.corpus.train
    if self.config.data.mode == 'sentence':
      return sentences.sentence_batches(
          stream, self.corpus.boundary_id, t.batch_size, t.seq_len,
          shuffle_seed=self.config.seed + epoch, start=start, rows=rows)
    if t.variable_bptt:
      return variable_bptt.windows(stream, t.batch_size,
                                   self._epochs.plan(epoch), start=start,
                                   rows=rows)
    return batching.bptt_windows(stream, t.batch_size, t.seq_len, start=start,
                                 rows=rows)

  def lr_scale(self, window_length: int) -> float | None:
    """Variable BPTT's learning-rate factor for a window (None: no scaling)."""
    if not self.config.train.variable_bptt:
      return None
    return variable_bptt.lr_scale(window_length, self.config.train.seq_len)

  def check_split_sizes(self) -> None:
    """Fails at start-up, naming the split, if one cannot fill one window."""
    t, e = self.config.train, self.config.eval
    eval_len = e.seq_len or t.seq_len
    needs = [('valid', e.batch_size, eval_len, 'eval.batch_size'),
             ('test', e.test_batch_size, eval_len, 'eval.test_batch_size')]
    if self.config.data.mode == 'stream':
      needs.insert(0, ('train', t.batch_size, t.seq_len, 'train.batch_size'))
    for split, batch_size, seq_len, key in needs:
      tokens = len(self.corpus.split(split))
      if batching.num_bptt_windows(tokens, batch_size, seq_len,
                                   drop_last=split == 'train') == 0:
        raise DataError(
            f'the {split} split has {tokens:,} tokens, too few for {key}='
            f'{batch_size} x seq_len={seq_len}; use a smaller {key} or '
            'seq_len, or more data')


class _ExamplePlan(_Epochs):
  """A plan whose rows are whole examples (pairs, instruction rows): the
  carry is reset every batch, the learning rate is not scaled by window
  length, and every split must hold examples (`_NOUN`, counted by
  `_num_examples`)."""

  resets_carry = True  # every example stands alone
  _NOUN = 'examples'

  def _num_examples(self, split: str) -> int:
    raise NotImplementedError

  def lr_scale(self, window_length: int) -> None:
    del window_length

  def check_split_sizes(self) -> None:
    count, batch_size = self._num_examples('train'), self.config.train.batch_size
    if count < batch_size:
      raise DataError(f'the train split has {count:,} {self._NOUN}, fewer '
                      f'than train.batch_size={batch_size}')
    for split in ('valid', 'test'):
      if not self._num_examples(split):
        raise DataError(f'the {split} split has no {self._NOUN}')


@dataclasses.dataclass(frozen=True)
class PairPlan(_ExamplePlan):
  """The training batches of a PairedCorpus: length-bucketed PairBatches,
  shuffled per (seed, epoch); the last partial batch of an epoch is dropped
  (every epoch has the same steps, and jit sees few shapes)."""
  config: Any  # the run config (ml_collections.ConfigDict)
  corpus: 'paired.PairedCorpus'

  _NOUN = 'pairs'

  def _num_examples(self, split: str) -> int:
    return len(self.corpus.source[split])

  @functools.cached_property
  def _epochs(self):
    return variable_bptt.FixedEpochs(paired_batching.num_batches(
        len(self.corpus.source['train']), self.config.train.batch_size,
        drop_last=True))

  def batches(self, epoch: int, start: int = 0,
              rows: tuple[int, int] | None = None) -> Iterator:
    source, target = self.corpus.split('train')
    return paired_batching.pair_batches(
        source, target, self.config.train.batch_size, seed=self.config.seed,
        epoch=epoch, drop_last=True, start=start, rows=rows)


@dataclasses.dataclass(frozen=True)
class InstructPlan(_ExamplePlan):
  """The training batches of an InstructData: padded rows, prompt targets
  masked out, bucketed by length and shuffled per (seed, epoch); the last
  partial batch of an epoch is dropped (see data/instruct.py)."""
  config: Any  # the run config (ml_collections.ConfigDict)
  corpus: 'instruct.InstructData'

  _NOUN = 'instruction pairs'

  def _num_examples(self, split: str) -> int:
    return len(self.corpus.rows[split])

  @functools.cached_property
  def _epochs(self):
    return variable_bptt.FixedEpochs(instruct.num_train_batches(
        len(self.corpus.rows['train']), self.config.train.batch_size))

  def batches(self, epoch: int, start: int = 0,
              rows: tuple[int, int] | None = None) -> Iterator[Batch]:
    i = self.config.data.instruct
    return instruct.batches(
        *self.corpus.split('train'), self.config.train.batch_size,
        seed=self.config.seed, epoch=epoch, pad_multiple=i.pad_multiple,
        max_len=i.max_len, start=start, rows_range=rows)
