"""The instruction-tuning task (config task='instruct'): (instruction,
response) pairs, a decoder-only LM (models.make_model: the rnn cells, the
transformer, xLSTM) and a loss on the response only.

It plugs into the same driver as the language models (tasks.TASKS). What is
its own:

  data      RawPairs (instruction, response) from the reader data.paired
            names (_read_pairs); rows and masks by data/instruct.py with the
            template of data.instruct; one vocabulary, data.level 'char'
            (built over the training rows) or 'code_bpe' (SentencePiece
            trained on them, spm.model in the workdir); vocab.json saved and
            checked on resume; adopted from the run of train.init_from.
  batches   data.InstructPlan: padded rows bucketed by length, prompt and
            padding targets masked, the carry reset every batch.
  score     response perplexity: NLL over the response tokens and the
            final '<eos>' only, each pair once.
  show      greedy responses to the first test instructions.
  results   final_results: the length-limit counts and the metrics of
            decoded responses (instruct_eval: exact match, chrF, BLEU,
            parse rate).
"""

from typing import Any

import jax
from absl import logging
from etils import epath

from rnnlm_jax import data, models
from rnnlm_jax.data import instruct as instruct_data
from rnnlm_jax.data import paired, paired_sources
from rnnlm_jax.data import tokenizers as tok_lib
from rnnlm_jax.training import instruct_eval, parallel, run_files, scoring
from rnnlm_jax.training import tasks, translation

SHOW_EXAMPLES = 2


def _read_pairs(config) -> paired_sources.RawPairs:
  """The (instruction, response) pairs: source = instructions, target =
  responses, from any data.paired.format reader (paired.PAIR_FORMATS:
  'code_instructions', 'instructions', 'jsonl', 'files', 'tfds')."""
  return paired.read_pairs(config.data.paired.format,
                           **translation.paired_settings(config, None))


def load_vocabs(config, workdir: str) -> instruct_data.Codec:
  """The codec saved with a run (vocab.json, spm.model at 'code_bpe')."""
  vocab = run_files.load_vocab(workdir)
  tokenizer = None
  if config.data.level == 'code_bpe':
    tokenizer = tok_lib.SentencePieceTokenizer(
        epath.Path(workdir) / f'{instruct_data.SPM_NAME}.model', lowercase=False)
  return instruct_data.Codec(config.data.level, vocab, tokenizer,
                             config.data.instruct.template)


def _codec(config, workdir: str, raw) -> instruct_data.Codec:
  """Adopted (train.init_from) or learned from the training rows; on resume
  the learned vocabulary must be the saved one."""
  adopted = run_files.adopted_from(workdir)
  if adopted is not None:
    if run_files.load_vocab(workdir).eos_id is None:
      raise run_files.RunMismatchError(
          f"train.init_from={adopted['init_from']}: its vocabulary has no "
          f"'<eos>' to end a response with (a char LM's), so {workdir} cannot "
          'be tuned from it')
    return load_vocabs(config, workdir)
  d, template = config.data, config.data.instruct.template
  codec = instruct_data.build_codec(
      d.level, template, instruct_data.train_texts(raw, template),
      spm_dir=workdir, spm_vocab_size=d.spm_vocab_size,
      min_count=d.vocab_min_count, max_size=d.vocab_max_size)
  if run_files.has_started(workdir):
    difference = run_files.load_vocab(workdir).first_difference(codec.vocab)
    if difference:
      raise run_files.RunMismatchError(
          f'vocabulary differs from the one {workdir} was trained with '
          f'({difference}): the data changed; pass --fresh to start anew')
  return codec


def load_data(config, workdir: str) -> instruct_data.InstructData:
  """The encoded pairs; the vocabulary saved in (or read from) `workdir`."""
  raw = _read_pairs(config)
  codec = _codec(config, workdir, raw)
  parallel.sync('rnnlm_jax.instruct.vocab.read')
  i = config.data.instruct
  dataset = instruct_data.encode_pairs(raw, codec, i.max_len,
                                       config.data.paired.max_pairs)
  for split in data.SPLITS:
    if dataset.truncated[split] or dataset.dropped[split]:
      logging.info('%s: %d responses truncated, %d pairs dropped '
                   '(data.instruct.max_len=%d)', split,
                   dataset.truncated[split], dataset.dropped[split], i.max_len)
  if jax.process_index() == 0:
    codec.vocab.save(epath.Path(workdir) / 'vocab.json')
  parallel.sync('rnnlm_jax.instruct.vocab.written')
  return dataset


def make_model(config, dataset):
  return models.make_model(config.model, len(dataset.vocab))


def score(params, model, dataset, split: str, batch_size: int, config, mesh,
          method: str = 'static') -> dict[str, float]:
  """Response NLL per token of `split` (each pair once, prompt targets
  masked out): {'loss', 'ppl', 'bits', 'tokens', 'bits_per_char'} (per
  character of the responses: comparable across tokenizers)."""
  i = config.data.instruct
  rows = parallel.process_rows(batch_size, parallel.batch_sharded(mesh, batch_size))
  batches = instruct_data.batches(
      *dataset.split(split), batch_size, shuffle=False,
      pad_multiple=i.pad_multiple, max_len=i.max_len, rows_range=rows)
  return scoring.score_rows(params, model, batches, batch_size=batch_size,
                            mesh=mesh, num_chars=dataset.scored_chars[split],
                            task='instruct', method=method)


def show(model, params, dataset, config) -> str:
  """Greedy responses to the first test instructions beside the references."""
  out = []
  instructions = dataset.instructions['test'][:SHOW_EXAMPLES]
  responses = instruct_eval.respond(model, params, dataset.codec, instructions,
                                    max_len=config.generate.length)
  for instruction, reference, response in zip(
      instructions, dataset.responses['test'], responses):
    out.append(f'instruction: {instruction}\nreference: {reference}\n'
               f'response: {response}')
  return '\n\n'.join(out)


def final_results(params, model, dataset, config, workdir: str) -> dict[str, Any]:
  """What results.json adds for this task: the response ppl of valid / test
  is the driver's valid_* / test_* (this task's score); here the length-limit
  counts and the metrics of decoded responses (instruct_eval)."""
  results = {'template': config.data.instruct.template}
  for split in data.SPLITS:
    results[f'{split}_truncated'] = int(dataset.truncated[split])
    results[f'{split}_dropped'] = int(dataset.dropped[split])
  results.update(instruct_eval.decoding_results(params, model, dataset, config,
                                                workdir))
  return results


tasks.TASKS.register('instruct', tasks.Task(
    load_data=load_data, load_vocabs=load_vocabs, plan=data.InstructPlan,
    make_model=make_model, score=score, show=show,
    final_results=final_results))
