"""Corpus BLEU and chrF of detokenized translations, via sacreBLEU.

The argument order is sacreBLEU's: hypotheses first, then references
(`sacrebleu.corpus_bleu(hypotheses, [references])`). BLEU is not symmetric
(the brevity penalty looks at the hypothesis length only), so swapped
arguments give a different, wrong score.

Scores use sacreBLEU's own tokenization ('13a') on detokenized text, so they
are comparable with published sacreBLEU numbers when the references are the
raw, untokenized test sentences (PairedCorpus.references). A model trained
on lower-cased text is judged by `bleu_lowercase`; `bleu` is the standard,
case-sensitive score.
"""

from typing import NamedTuple, Sequence

from sacrebleu.metrics import BLEU, CHRF


class TranslationScores(NamedTuple):
  """Corpus-level scores (0-100) with the sacreBLEU signature of each."""
  bleu: float
  bleu_signature: str
  bleu_lowercase: float
  bleu_lowercase_signature: str
  chrf: float
  chrf_signature: str
  num_sentences: int

  def as_dict(self) -> dict:
    """The numeric scores, for metrics logs."""
    return {'bleu': self.bleu, 'bleu_lowercase': self.bleu_lowercase,
            'chrf': self.chrf}


def _reference_streams(references, num: int) -> list[list[str]]:
  """[[ref_1 ... ref_num], ...]: one stream per reference set."""
  if isinstance(references, str):
    raise ValueError('references must be a sequence of sentences, not one str')
  references = list(references)
  if references and isinstance(references[0], str):
    streams = [references]  # one reference per hypothesis
  else:
    streams = [list(s) for s in references]
  for k, stream in enumerate(streams):
    if len(stream) != num:
      raise ValueError(f'reference set {k} has {len(stream):,} sentences but '
                       f'there are {num:,} hypotheses; they must align')
    if not all(isinstance(r, str) for r in stream):
      raise ValueError(f'reference set {k} holds non-str entries')
  return streams


def corpus_bleu(hypotheses: Sequence[str],
                references: Sequence[str] | Sequence[Sequence[str]]
                ) -> TranslationScores:
  """sacreBLEU corpus BLEU (cased and lower-cased) and chrF.

  Args:
    hypotheses: the system's detokenized output, one str per sentence.
    references: one reference str per hypothesis, or several reference
      sets (each a sequence aligned with the hypotheses), as sacreBLEU takes.

  Returns:
    TranslationScores; `bleu` equals
    sacrebleu.corpus_bleu(hypotheses, [references]).score.
  """
  if isinstance(hypotheses, str):
    raise ValueError('hypotheses must be a sequence of sentences, not one str')
  hypotheses = list(hypotheses)
  if not hypotheses:
    raise ValueError('corpus_bleu got no hypotheses')
  if not all(isinstance(h, str) for h in hypotheses):
    raise ValueError('hypotheses must all be str (detokenize the ids first)')
  streams = _reference_streams(references, len(hypotheses))
  cased, lower, chrf = BLEU(), BLEU(lowercase=True), CHRF()
  return TranslationScores(
      bleu=float(cased.corpus_score(hypotheses, streams).score),
      bleu_signature=str(cased.get_signature()),
      bleu_lowercase=float(lower.corpus_score(hypotheses, streams).score),
      bleu_lowercase_signature=str(lower.get_signature()),
      chrf=float(chrf.corpus_score(hypotheses, streams).score),
      chrf_signature=str(chrf.get_signature()),
      num_sentences=len(hypotheses))
