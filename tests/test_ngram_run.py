"""model.type='ngram': a run trained by counting, through the same driver,
results.json, eval and generate as the neural models."""

import numpy as np
import pytest

from rnnlm_jax import configs, data, models
from rnnlm_jax.models import kneser_ney
from rnnlm_jax.training import inference, trainer


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


def test_ensemble_of_a_neural_run_and_an_ngram_run(tmp_path):
  from rnnlm_jax.training import parallel, scoring  # pylint: disable=import-outside-toplevel
  _corpus(tmp_path)
  kn = ngram_config(tmp_path, order=2)
  trainer.train_and_evaluate(kn, str(tmp_path / 'kn'))
  lstm = ngram_config(tmp_path)
  lstm.model.type = 'rnn'
  lstm.model.num_layers, lstm.model.hidden_size, lstm.model.embed_size = 1, 16, 8
  lstm.model.unroll = 1
  lstm.train.batch_size, lstm.train.seq_len, lstm.train.num_steps = 4, 8, 30
  lstm.train.optimizer, lstm.train.learning_rate = 'adam', 1e-2
  lstm.train.schedule, lstm.train.progress_bar = 'constant', False
  lstm.eval.batch_size = 4
  lstm.eval.seq_len = 8
  lstm_dir = str(tmp_path / 'lstm')
  trainer.train_and_evaluate(lstm, lstm_dir)
  model, state, _ = inference.load_trained(lstm, lstm_dir)
  corpus = data.load_corpus(lstm.data)
  mesh = parallel.make_mesh()

  def mixed(weights):
    cfg = configs.base_config().eval
    cfg.ensemble.members, cfg.ensemble.weights = str(tmp_path / 'kn'), weights
    return scoring.score_stream(state.params, model, corpus.test, batch_size=1,
                                seq_len=8, mesh=mesh, method='ensemble',
                                eval_config=cfg, corpus=corpus)

  alone = scoring.score_stream(state.params, model, corpus.test, batch_size=1,
                               seq_len=8, mesh=mesh)
  assert mixed('1,0')['loss'] == pytest.approx(alone['loss'], rel=1e-5)
  kn_alone = trainer.train_and_evaluate(kn, str(tmp_path / 'kn'))['test_loss']
  fitted = mixed('')
  assert fitted['weight_0'] + fitted['weight_1'] == pytest.approx(1.0)
  assert fitted['loss'] < min(alone['loss'], kn_alone) + 1e-3
  # A member over another vocabulary is refused in one line.
  other = tmp_path / 'other'
  other.mkdir()
  for split in ('train', 'valid', 'test'):
    (other / f'ptb.{split}.txt').write_text('x y z\n' * 20)
  trainer.train_and_evaluate(ngram_config(other), str(tmp_path / 'kn_other'))
  cfg = configs.base_config().eval
  cfg.ensemble.members = str(tmp_path / 'kn_other')
  with pytest.raises(ValueError, match='different vocabularies'):
    scoring.score_stream(state.params, model, corpus.test, batch_size=1,
                         seq_len=8, mesh=mesh, method='ensemble',
                         eval_config=cfg, corpus=corpus)
