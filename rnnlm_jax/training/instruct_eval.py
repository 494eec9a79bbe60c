"""Responses of an instruct run, and how good they are.

  respond(model, params, codec, instructions, method=..., max_len=...)
      -> the decoded responses (lm_decoding: greedy / beam / top-p, batched)
  decoding_results(params, model, dataset, config, workdir)
      -> results.json's {split}_{method}_{exact_match, chrf, bleu,
         parse_rate} for eval.respond.methods on eval.respond.splits, and
         responses_{split}_{method}.jsonl in the workdir (instruction,
         reference, response, parses) to read them.

Exact match and parse rate are percentages, like chrF and BLEU. The parse
rate of the references is reported beside them ({split}_reference_parse_rate):
the ceiling a model can reach.
"""

import json
from typing import Any, Sequence

import jax
from etils import epath

from rnnlm_jax import code_metrics, lm_decoding
from rnnlm_jax.data import instruct as instruct_data


def decoding_options(respond_config, method: str) -> dict[str, Any]:
  """lm_decoding.respond's keyword options for `method` from eval.respond."""
  r = respond_config
  options = dict(method=method, max_len=r.max_len, batch_size=r.batch_size)
  if method == 'beam':
    options.update(beam_size=r.beam_size, length_penalty=r.length_penalty)
  elif method == 'top_p':
    options.update(top_p=r.top_p, temperature=r.temperature, seed=r.seed)
  return options


def respond(model, params, codec: instruct_data.Codec,
            instructions: Sequence[str], **options) -> list[str]:
  """The responses (text, up to '<eos>') to `instructions`, each in the
  run's template; options: lm_decoding.respond's (method, max_len, ...)."""
  prompts = [codec.prompt_ids(i) for i in instructions]
  ids = lm_decoding.respond(model, params, prompts, eos_id=codec.eos_id,
                            **options)
  return [codec.decode(x) for x in ids]


def scores_of(prefix: str, hypotheses: Sequence[str],
              references: Sequence[str]) -> dict[str, Any]:
  """code_metrics.code_scores as results.json keys `prefix` + name, exact
  match and parse rate in %."""
  scores = code_metrics.code_scores(hypotheses, references)
  return {prefix + 'exact_match': 100.0 * scores['exact_match'],
          prefix + 'chrf': scores['chrf'], prefix + 'bleu': scores['bleu'],
          prefix + 'parse_rate': 100.0 * scores['parse_rate'],
          prefix + 'count': scores['count'],
          'chrf_signature': scores['chrf_signature'],
          'bleu_signature': scores['bleu_signature']}


def decoding_results(params, model, dataset, config, workdir: str) -> dict:
  """Decoded-response metrics (see the module docstring)."""
  r = config.eval.respond
  results = {}
  for split in r.splits:
    instructions = list(dataset.instructions[split])
    references = list(dataset.responses[split])
    if r.max_pairs:
      instructions, references = (instructions[:r.max_pairs],
                                  references[:r.max_pairs])
    if not instructions:
      continue
    results[f'{split}_reference_parse_rate'] = 100.0 * sum(
        map(code_metrics.parses, references)) / len(references)
    for method in r.methods:
      hypotheses = respond(model, params, dataset.codec, instructions,
                           **decoding_options(r, method))
      results.update(scores_of(f'{split}_{method}_', hypotheses, references))
      if jax.process_index() == 0:
        write_responses(workdir, f'{split}_{method}', instructions,
                         references, hypotheses)
  return results


def write_responses(workdir: str, name: str, instructions, references,
                    hypotheses) -> None:
  """responses_{name}.jsonl: one JSON object per pair (multi-line code
  stays one record)."""
  path = epath.Path(workdir) / f'responses_{name}.jsonl'
  lines = [json.dumps({'instruction': i, 'reference': r, 'response': h,
                       'parses': code_metrics.parses(h)})
           for i, r, h in zip(instructions, references, hypotheses)]
  path.write_text('\n'.join(lines) + '\n')
