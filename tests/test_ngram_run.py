"""model.type='ngram': a run trained by counting, through the same driver,
results.json, eval and generate as the neural models."""

import numpy as np
import pytest

from rnnlm_jax import configs, data, models
from rnnlm_jax.models import kneser_ney
from rnnlm_jax.train import inference, trainer


def _corpus(root):
  rng = np.random.default_rng(0)
  words = 'the cat dog sat ran on a mat rug'.split()
  for split, n in (('train', 400), ('valid', 40), ('test', 40)):
    lines = [' '.join(rng.choice(words, rng.integers(3, 8))) for _ in range(n)]
    (root / f'ptb.{split}.txt').write_text('\n'.join(lines) + '\n')


def ngram_config(root, order=3):
  c = configs.base_config()
  c.data.source, c.data.path, c.data.level = 'files', str(root), 'word'
  c.model.type = 'ngram'
  c.model.ngram.order = order
  c.generate.length = 12
  return c


def test_counted_run_writes_results_and_serves_eval_and_generate(tmp_path):
  _corpus(tmp_path)
  config = ngram_config(tmp_path)
  workdir = str(tmp_path / 'run')
  results = trainer.train_and_evaluate(config, workdir)
  corpus = data.load_corpus(config.data)
  lm = kneser_ney.KneserNeyLM.fit(np.asarray(corpus.train), len(corpus.vocab), 3,
                                  boundary_id=corpus.vocab.eos_id)
  want = -lm.log_prob(np.asarray(corpus.test)).mean()
  assert results['test_loss'] == pytest.approx(want, rel=1e-12)
  assert results['order'] == 3 and len(results['num_ngrams']) == 3
  assert inference.evaluate_checkpoint(config, workdir, 'test')['loss'] == \
      pytest.approx(want, rel=1e-12)
  text = inference.generate(config, workdir)  # 12 tokens, <eos> as newlines
  assert len(text.split()) + text.count('\n') == 12
  # Finished: the same command changes nothing.
  assert trainer.train_and_evaluate(config, workdir) == results


def test_bad_order_is_one_line():
  config = configs.base_config()
  config.model.type = 'ngram'
  config.model.ngram.order = 9
  with pytest.raises(ValueError, match=r'model.ngram.order=9 must be an int in 2..7'):
    models.validate(config.model)
