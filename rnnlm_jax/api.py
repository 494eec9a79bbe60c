"""Use rnnlm_jax from Python (a notebook): train a run, load a trained one,
score text, sample, translate.

  import rnnlm_jax
  results = rnnlm_jax.train(config, '/tmp/run')        # the CLI's driver
  run = rnnlm_jax.load('/tmp/run')                     # best checkpoint
  run.score('the cat sat on the mat\\n')               # log-probs, ppl, bits
  run.generate('the company', length=30, temperature=0.8, seed=1)
  rnnlm_jax.load('/tmp/m30k').translate(['Ein Mann fährt Fahrrad.'], beam=5)
  rnnlm_jax.load('/tmp/m30k').attention('Ein Mann fährt Fahrrad.').weights

`load` rebuilds the model from the run's config.json and restores its
parameters onto whatever devices this process has (a run trained on several
devices loads on one CPU). Misuse is a one-line ValueError.
"""

import dataclasses
import json
from typing import Any, Sequence

import ml_collections
import numpy as np
from etils import epath

from rnnlm_jax import checkpoint as checkpoint_lib
from rnnlm_jax import data, decoding, models, sampling
from rnnlm_jax.training import ensembles, inference, instruct_eval, parallel
from rnnlm_jax.training import scoring
from rnnlm_jax.training import trainer


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains (or resumes, or just reads) the run in `workdir`; its results."""
  return dict(trainer.train_and_evaluate(config, workdir))


def load(workdir: str, checkpoint: str = 'best') -> 'TrainedRun':
  """The run in `workdir` (checkpoint 'best', 'latest' or 'average': the
  mean params of the kept latest checkpoints)."""
  path = epath.Path(workdir) / 'config.json'
  if not path.exists():
    raise ValueError(f'{workdir} holds no run (no config.json)')
  config = ml_collections.ConfigDict(json.loads(path.read_text()))
  if models.MODEL_TYPES.get(config.model.type).counted:
    raise ValueError(f'{workdir} is an n-gram run (model.type=ngram): use '
                     'the eval / generate commands')
  if not (epath.Path(workdir) / 'checkpoints').exists():
    raise ValueError(f'{workdir} has no checkpoint yet: train it first')
  try:
    model, state, dataset = inference.load_trained(config, workdir,
                                                   checkpoint)
  except checkpoint_lib.CheckpointError as e:
    raise ValueError(str(e)) from None
  return TrainedRun(config, workdir, model, state.params, dataset)


@dataclasses.dataclass(frozen=True)
class Attention:
  """A greedy translation and the decoder's attention while producing it.

  weights: f32 [T, S], row t the attention over the source positions when
    output token t was produced (each row sums to 1).
  source_tokens: the S source tokens the encoder read (ending in <eos>).
  target_tokens: the T output tokens (ending in <eos>).
  translation: the detokenized output (translate(..., beam=1)'s).
  """
  translation: str
  weights: np.ndarray
  source_tokens: list[str]
  target_tokens: list[str]

  def save_png(self, path: str, title: str = '') -> str:
    """The heat map (rows: output tokens, columns: source tokens) as a PNG."""
    return decoding.save_attention_png(path, self.weights, self.source_tokens,
                                       self.target_tokens, title=title)


@dataclasses.dataclass
class TrainedRun:
  """A trained run: its config, model, parameters and vocabularies."""
  config: ml_collections.ConfigDict
  workdir: str
  model: Any
  params: Any
  dataset: Any  # the LM's vocabulary (.vocab), or the PairedCorpus

  @property
  def task(self) -> str:
    return self.config.task

  def _require(self, task: str, what: str) -> None:
    if self.task != task:
      raise ValueError(f"{what} needs a task={task!r} run; {self.workdir} "
                       f'is task={self.task!r}')

  def _encode(self, text: str) -> np.ndarray:
    vocab, level = self.dataset.vocab, self.config.data.level
    if level == 'code_bpe':  # the run's own SentencePiece model
      tokenizer = data.piece_corpus.load_tokenizer(self.workdir)
      return data.piece_corpus.encode(text, tokenizer, vocab)
    if self.config.data.lowercase:
      text = text.lower()
    tokens = data.tokenize(text, level)
    if level == 'char':
      unknown = sorted({t for t in tokens if t not in vocab.tokens})
      if unknown:
        raise ValueError(f'characters {unknown[:5]} are not in the run\'s '
                         'character vocabulary')
    return np.asarray(vocab.encode(tokens), np.int32)

  def score(self, text: str) -> dict[str, Any]:
    """`text` scored as one stream, tokenized as the run's corpus (a word
    corpus ends each line with <eos>): every token after the first, with
    the state carried across eval windows at batch 1, as the final test
    number. Returns log_probs [N-1] (nats), loss, ppl, bits, tokens."""
    self._require('lm', 'score')
    ids = self._encode(text)
    if len(ids) < 2:
      raise ValueError('score needs at least two tokens')
    seq_len = self.config.eval.seq_len or self.config.train.seq_len
    log_probs = ensembles.token_log_probs(
        self.params, self.model, ids, seq_len=seq_len, mesh=parallel.make_mesh())
    summary = scoring.summarize(float(-log_probs.sum()), float(len(log_probs)))
    return dict(summary, log_probs=log_probs)

  def generate(self, prompt: str = '', length: int = 100,
               temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               seed: int = 0) -> str:
    """As the `generate` command: the prompt and `length` sampled tokens."""
    self._require('lm', 'generate')
    if self.config.data.level == 'char' and prompt:
      self._encode(prompt)  # unknown characters are an error, not <unk>
    gen = ml_collections.ConfigDict(dict(
        prompt=prompt, length=length, temperature=temperature, top_k=top_k,
        top_p=top_p, seed=seed))
    tokenizer = (data.piece_corpus.load_tokenizer(self.workdir)
                 if self.config.data.level == 'code_bpe' else None)
    return sampling.sample_text(self.model, self.params, self.dataset.vocab,
                                self.config.data.level, gen, tokenizer)

  def respond(self, instruction: str, method: str = 'greedy',
              max_len: int = 256, **options) -> str:
    """The response of an instruct run to `instruction` in its template
    (method 'greedy' | 'beam' | 'top_p'; options: lm_decoding.respond's:
    beam_size, length_penalty, top_p, temperature, seed)."""
    self._require('instruct', 'respond')
    (response,) = instruct_eval.respond(self.model, self.params, self.dataset,
                                        [instruction], method=method,
                                        max_len=max_len, **options)
    return response

  def translate(self, texts: Sequence[str], beam: int = 5) -> list[str]:
    """Translations of `texts` (beam 1: greedy)."""
    self._require('seq2seq', 'translate')
    from rnnlm_jax.training import translation  # pylint: disable=import-outside-toplevel
    return translation.translate_texts(
        self.params, self.model, self.dataset, texts, beam=beam,
        translate_config=self.config.eval.translate)


  def attention(self, text: str) -> Attention:
    """The greedy translation of one source sentence with its attention
    weights [target_len, source_len] and both sides' tokens."""
    self._require('seq2seq', 'attention')
    if not isinstance(text, str):
      raise ValueError(f'attention takes one sentence (a str), not '
                       f'{type(text).__name__}')
    if (self.config.model.type == 'seq2seq'
        and self.config.model.seq2seq.attention == 'none'):
      raise ValueError(f"{self.workdir} has model.seq2seq.attention='none': "
                       'its decoder has no attention weights')
    from rnnlm_jax.training import translation  # pylint: disable=import-outside-toplevel
    corpus = self.dataset
    source = corpus.source_vocab.encode(corpus.source_tokenizer.tokenize(text))
    weights, source_tokens, target_tokens = translation.greedy_attention(
        self.params, self.model, corpus, np.asarray(source, np.int32),
        self.config.eval.translate.max_len)
    output = corpus.decode_target(corpus.target_vocab.encode(target_tokens))
    return Attention(output, weights, source_tokens, target_tokens)
