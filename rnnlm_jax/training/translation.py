"""The sequence-to-sequence task (config task='seq2seq'): sentence pairs,
an encoder-decoder, teacher-forced perplexity and BLEU of decoded output.

It plugs into the same driver as the language models (tasks.TASKS): the
trainer's loop, checkpoints, exact resume, SIGTERM handling, metrics and data
parallelism are theirs. What is its own:

  data      data.load_paired with the settings of config.data.paired (plus
            data.path / lowercase / vocab_min_count / vocab_max_size); the
            source and target vocabularies (and SentencePiece models) are
            saved in the workdir and reused on resume.
  batches   data.PairPlan: length-bucketed, shuffled per (seed, epoch).
  model     an encoder-decoder: models.TranslationModel (model.type
            'seq2seq') or models.TransformerSeq2Seq ('transformer_seq2seq').
  score     teacher-forced NLL per target token (the usual perplexity).
  results   corpus BLEU (sacreBLEU; cased and lower-cased, with signatures)
            and chrF of greedy and beam-search output on valid and test,
            the test translations and an attention heat map in the workdir.
"""

import dataclasses
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from etils import epath

from rnnlm_jax import bleu, configs, data, decoding, models
from rnnlm_jax.data import paired, paired_batching
from rnnlm_jax.training import instruct_eval, parallel, run_files, scoring, tasks


def paired_settings(config, workdir: str | None) -> dict[str, Any]:
  """load_paired's keyword settings from the config."""
  d, p = config.data, config.data.paired
  settings = dict(
      path=d.path, source_lang=p.source_lang, target_lang=p.target_lang,
      source_key=p.source_key, target_key=p.target_key,
      tfds_name=p.tfds_name, tfds_data_dir=p.tfds_data_dir,
      tfds_splits=tuple(p.tfds_splits), tokenizer=p.tokenizer,
      lowercase=bool(d.lowercase), spm_vocab_size=p.spm_vocab_size,
      vocab_min_count=d.vocab_min_count, vocab_max_size=d.vocab_max_size,
      max_source_len=p.max_source_len, max_target_len=p.max_target_len,
      length_policy=p.length_policy, spm_model_type=p.spm_model_type,
      code_stdlib=bool(p.code_stdlib), code_packages=tuple(p.code_packages),
      with_signature=bool(p.with_signature),
      min_instruction_chars=p.min_instruction_chars,
      max_instruction_chars=p.max_instruction_chars,
      min_response_chars=p.min_response_chars,
      max_response_chars=p.max_response_chars, record_format=p.record_format,
      instruction_key=p.instruction_key, input_key=p.input_key,
      output_key=p.output_key, cache_dir=str(d.cache_dir))
  if workdir is not None:
    settings['spm_dir'] = workdir  # SentencePiece models live with the run
  return settings


def load_data(config, workdir: str) -> paired.PairedCorpus:
  """The pairs; on resume, encoded with the run's saved vocabularies."""
  p = config.data.paired
  started = run_files.has_started(workdir)
  vocabs = (paired.load_vocabs(workdir, p.source_lang, p.target_lang)
            if started else None)
  parallel.sync('rnnlm_jax.translation.vocab.read')
  corpus = paired.load_paired(p.format, vocabs=vocabs,
                              **paired_settings(config, workdir))
  if p.max_pairs:  # the vocabularies stay those of the whole train split
    cap = lambda per_split: {k: v[:p.max_pairs] for k, v in per_split.items()}
    corpus = dataclasses.replace(corpus, source=cap(corpus.source),
                                 target=cap(corpus.target),
                                 references=cap(corpus.references))
  for split in data.SPLITS:
    if corpus.truncated[split] or corpus.dropped[split]:
      logging.info('%s: %d pairs truncated, %d dropped (max_source_len / '
                   'max_target_len)', split, corpus.truncated[split],
                   corpus.dropped[split])
  if not started and jax.process_index() == 0:
    corpus.save_vocabs(workdir)
  parallel.sync('rnnlm_jax.translation.vocab.written')
  return corpus


def make_model(config, corpus):
  """The encoder-decoder of config.model (model.type 'seq2seq' |
  'transformer_seq2seq'); checked against eval.translate.max_len now, not
  after training."""
  model = models.make_model(config.model, len(corpus.target_vocab),
                            source_vocab_size=len(corpus.source_vocab))
  try:
    decoding.check_steps(model, config.eval.translate.max_len)
  except ValueError as e:
    raise ValueError(f'eval.translate.max_len: {e}') from None
  return model


def score(params, model, corpus, split: str, batch_size: int, config, mesh,
          method: str = 'static') -> dict[str, float]:
  """Teacher-forced NLL of every target token of `split` (each pair once),
  also in bits per character of the target text (its detokenized ids plus 1
  for each '<eos>'): comparable across tokenizers."""
  rows = parallel.process_rows(batch_size, parallel.batch_sharded(mesh, batch_size))
  source, target = corpus.split(split)
  batches = paired_batching.eval_batches(source, target, batch_size, rows=rows)
  chars = sum(len(corpus.decode_target(ids)) + 1 for ids in target)
  return scoring.score_rows(params, model, batches, batch_size=batch_size,
                            mesh=mesh, num_chars=chars, task='seq2seq',
                            method=method)


def translate_ids(params, model, source_ids: Sequence[np.ndarray], *,
                  batch_size: int, beam_size: int, max_len: int,
                  length_penalty: float) -> list[np.ndarray]:
  """Decoded target ids (without <eos>) of each source id sequence; beam 1
  is greedy decoding."""
  out = []
  empty = [np.zeros((0,), np.int32)] * len(source_ids)
  for batch in paired_batching.eval_batches(source_ids, empty, batch_size):
    src, mask = jnp.asarray(batch.source), jnp.asarray(batch.source_mask)
    if beam_size == 1:
      hyp = decoding.greedy(model, params, src, mask, max_len, paired.BOS_ID,
                            paired.EOS_ID, length_penalty)
    else:
      hyp = decoding.beam_search(model, params, src, mask, beam_size, max_len,
                                 paired.BOS_ID, paired.EOS_ID, length_penalty)
    tokens, lengths = np.asarray(hyp.tokens), np.asarray(hyp.length)
    for row, mask_row in zip(range(len(tokens)), np.asarray(batch.source_mask)):
      if mask_row.any():  # padding rows of the last batch have no source
        ids = tokens[row, :lengths[row]]
        out.append(ids[ids != paired.EOS_ID])
  return out[:len(source_ids)]


def translate_texts(params, model, corpus, texts: Sequence[str], *, beam: int,
                    translate_config) -> list[str]:
  """Raw source sentences -> detokenized translations (beam 1: greedy);
  translate_config: the config's eval.translate."""
  t = translate_config
  source = [corpus.source_vocab.encode(corpus.source_tokenizer.tokenize(x))
            for x in texts]
  ids = translate_ids(params, model, source, batch_size=t.batch_size,
                      beam_size=beam, max_len=t.max_len,
                      length_penalty=t.length_penalty)
  return [corpus.decode_target(x) for x in ids]


def scored_pairs(corpus, config, split: str) -> tuple[Sequence, Sequence]:
  """(source ids, references) of `split` that BLEU is computed on: all
  pairs, or for a code target (data.paired.spm_model_type='code_bpe') the
  first eval.respond.max_pairs (0: all)."""
  code = config.data.paired.spm_model_type == 'code_bpe'
  limit = (config.eval.respond.max_pairs or None) if code else None
  source, _ = corpus.split(split)
  return source[:limit], corpus.references[split][:limit]


def bleu_results(params, model, corpus, config, workdir: str) -> dict[str, Any]:
  """BLEU / chrF and exact match (%) of greedy and beam decoding on valid
  and test; writes the test translations and an attention heat map into
  `workdir` (code targets: responses_test_{greedy,beam}.jsonl). A code target (data.paired.spm_model_type='code_bpe') is also
  scored as the instruct task scores responses, on the same pairs: the first
  eval.respond.max_pairs of each split (0: all), with the parse rate."""
  t = config.eval.translate
  code = config.data.paired.spm_model_type == 'code_bpe'
  results = {}
  for split in ('valid', 'test'):
    source, references = scored_pairs(corpus, config, split)
    for name, beam in (('greedy', 1), ('beam', t.beam_size)):
      ids = translate_ids(params, model, source, batch_size=t.batch_size,
                          beam_size=beam, max_len=t.max_len,
                          length_penalty=t.length_penalty)
      hypotheses = [corpus.decode_target(x) for x in ids]
      scores = bleu.corpus_bleu(hypotheses, references)
      results.update({f'{split}_{name}_{k}': v
                      for k, v in scores._asdict().items()})
      if code:
        results.update(instruct_eval.scores_of(f'{split}_{name}_', hypotheses,
                                               references))
      else:  # outputs equal to the reference, in %
        results[f'{split}_{name}_exact_match'] = 100.0 * float(np.mean(
            [h == r for h, r in zip(hypotheses, references)]))
      logging.info('%s %s: BLEU %.2f (lower-cased %.2f) chrF %.2f  %s', split,
                   name, scores.bleu, scores.bleu_lowercase, scores.chrf,
                   scores.bleu_signature)
      if split == 'test' and jax.process_index() == 0:
        if code:  # multi-line outputs: one JSON record per pair
          instruct_eval.write_responses(
              workdir, f'test_{name}', [corpus.decode_source(x) for x in source],
              references, hypotheses)
        else:
          (epath.Path(workdir) / f'translations.test.{name}.txt').write_text(
              '\n'.join(hypotheses) + '\n')
  results['length_penalty'] = t.length_penalty
  results['beam_size'] = t.beam_size
  results['data_info'] = dict(corpus.info)  # e.g. code extraction counts
  if jax.process_index() == 0:
    _attention_pngs(params, model, corpus, config, workdir)
  return results


def greedy_attention(params, model, corpus, source_ids: np.ndarray,
                     max_len: int) -> tuple[np.ndarray, list[str], list[str]]:
  """The greedy translation of one source sentence (ids [S] without <eos>)
  and the decoder's attention while producing it.

  Returns (weights [T_out, S + 1], the S + 1 source tokens, the T_out
  output tokens): rows are output steps, columns source positions; both
  token lists end in the <eos> (read by the encoder, emitted or, at max_len,
  appended).
  """
  src = np.concatenate([source_ids, [paired.EOS_ID]]).astype(np.int32)
  (ids,) = translate_ids(params, model, [source_ids], batch_size=1,
                         beam_size=1, max_len=max_len, length_penalty=0.0)
  out = np.concatenate([ids, [paired.EOS_ID]]).astype(np.int32)
  weights = decoding.attention_map(model, params, src, out, paired.BOS_ID,
                                   paired.EOS_ID)
  out = out[:len(weights)]  # a model with max_len positions sees no more
  words = lambda vocab, x: [vocab.tokens[j] for j in x]
  return weights, words(corpus.source_vocab, src), words(corpus.target_vocab, out)


def _attention_pngs(params, model, corpus, config, workdir: str, count: int = 3):
  """Heat maps of the greedy output's attention for the first test pairs."""
  if '://' in workdir:  # matplotlib writes local files
    return
  source, _ = corpus.split('test')
  for i in range(min(count, len(source))):
    weights, source_words, output_words = greedy_attention(
        params, model, corpus, source[i], config.eval.translate.max_len)
    decoding.save_attention_png(
        os.path.join(workdir, f'attention_test{i}.png'), weights,
        source_words, output_words, title=f'test pair {i}')


def validation_bleu(params, model, corpus, config) -> dict[str, float]:
  """Greedy BLEU / chrF on valid at each evaluation, when
  eval.translate.valid_bleu is on or train.best_metric names one of them."""
  if not (config.eval.translate.valid_bleu
          or config.train.best_metric in configs.SEQ2SEQ_VALID_METRICS):
    return {}
  t = config.eval.translate
  source, references = scored_pairs(corpus, config, 'valid')
  ids = translate_ids(params, model, source, batch_size=t.batch_size,
                      beam_size=1, max_len=t.max_len, length_penalty=0.0)
  scores = bleu.corpus_bleu([corpus.decode_target(x) for x in ids], references)
  return {k: getattr(scores, k) for k in configs.SEQ2SEQ_VALID_METRICS}


def show(model, params, corpus, config) -> str:
  """A few test translations (greedy) beside their references."""
  source, _ = corpus.split('test')
  ids = translate_ids(params, model, source[:3], batch_size=3, beam_size=1,
                      max_len=config.eval.translate.max_len, length_penalty=0.0)
  return '\n'.join(
      f'src: {corpus.decode_source(s)}\nref: {r}\nhyp: {corpus.decode_target(h)}'
      for s, r, h in zip(source, corpus.references['test'], ids))


tasks.TASKS.register('seq2seq', tasks.Task(
    load_data=load_data, plan=data.PairPlan, make_model=make_model,
    score=score, show=show, final_results=bleu_results,
    validation_metrics=validation_bleu, higher_better=configs.SEQ2SEQ_VALID_METRICS))
