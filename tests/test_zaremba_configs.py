"""The three Zaremba et al. (2014) configs against the paper's hyper-parameters.

The table below is typed from the paper (Section 4.1 and Table 1) and its
released TF code (ptb_word_lm.py: Small/Medium/LargeConfig), not copied from
the configs, so a drifting config fails here.
"""

import pathlib

import pytest

from rnnlm_jax import config_checks, models
from rnnlm_jax.training import optim

from conftest import load_script

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / 'experiments'

# name: layers, units, dropout, init scale, epochs at lr 1, decay per epoch,
#       epochs, clip norm, batch, BPTT steps, valid ppl, test ppl
PAPER = {
    'small': (2, 200, 0.0, 0.1, 4, 0.5, 13, 5.0, 20, 20, 120.7, 114.5),
    'medium': (2, 650, 0.5, 0.05, 6, 0.8, 39, 5.0, 20, 35, 86.2, 82.7),
    'large': (2, 1500, 0.65, 0.04, 14, 1 / 1.15, 55, 10.0, 20, 35, 82.2, 78.4),
}


def _module(name):
  path = EXPERIMENTS / f'zaremba_{name}' / 'config.py'
  return load_script(path, f'zaremba_{name}_config')


@pytest.mark.parametrize('name', sorted(PAPER))
def test_config_has_the_papers_hyperparameters(name):
  (layers, units, dropout, init, flat_epochs, decay, epochs, clip, batch, bptt,
   _, _) = PAPER[name]
  c = _module(name).get_config()
  config_checks.validate(c)
  models.validate(c.model)
  m, t = c.model, c.train
  assert (c.data.source, c.data.level) == ('files', 'word')
  assert m.get('type', 'rnn') == 'rnn' and m.cell == 'lstm'
  assert (m.num_layers, m.hidden_size, m.embed_size) == (layers, units, units)
  assert not m.tie_embeddings
  # Dropout on every non-recurrent connection, none on the recurrent ones.
  assert (m.dropout_embed, m.dropout, m.dropout_output) == (dropout,) * 3
  assert m.init_scale == init
  assert m.forget_bias == 0.0
  assert (t.optimizer, t.learning_rate, t.schedule) == ('sgd', 1.0, 'step_decay')
  assert t.decay_start_epoch == flat_epochs
  assert t.decay_rate == pytest.approx(decay)
  assert (t.num_epochs, t.num_steps) == (epochs, 0)
  assert t.clip_norm == clip
  assert (t.batch_size, t.seq_len) == (batch, bptt)
  assert t.loss_normalization == 'sequence'  # the TF code's sum over time
  assert c.eval.test_batch_size == 1


@pytest.mark.parametrize('name', sorted(PAPER))
def test_learning_rate_is_flat_then_decays_each_epoch(name):
  _, _, _, _, flat_epochs, decay, epochs, *_ = PAPER[name]
  train = _module(name).get_config().train
  per_epoch = 10
  schedule = optim.make_schedule(train, per_epoch, epochs * per_epoch)
  lr_of_epoch = [float(schedule(e * per_epoch + 3)) for e in range(epochs)]
  assert lr_of_epoch[:flat_epochs] == [1.0] * flat_epochs
  for e in range(flat_epochs, epochs):
    assert lr_of_epoch[e] == pytest.approx(decay ** (e + 1 - flat_epochs), rel=1e-5)


@pytest.mark.parametrize('name', sorted(PAPER))
def test_docstring_states_command_and_paper_numbers(name):
  *_, valid, test = PAPER[name]
  module = _module(name)
  doc = module.__doc__
  assert f'--config experiments/zaremba_{name}/config.py' in doc
  assert f'valid {valid}' in doc and f'test {test}' in doc
  if hasattr(module, 'PAPER'):
    assert module.PAPER == {'valid_ppl': valid, 'test_ppl': test}
  if name != 'small':  # not run yet: the docstring must say so
    assert 'NOT YET RUN' in doc


# The TensorFlow PTB tutorial's own runs (tensorflow/models ptb_word_lm.py,
# the table in its docstring): valid, test perplexity.
TF_TUTORIAL = {'small': (121.39, 115.91), 'medium': (86.16, 82.07),
               'large': (82.62, 78.29)}


@pytest.mark.parametrize('name', sorted(PAPER))
def test_readme_gives_the_paper_and_the_tf_tutorial_numbers(name):
  readme = (EXPERIMENTS / f'zaremba_{name}' / 'README.md').read_text()
  *_, valid, test = PAPER[name]
  tf_valid, tf_test = TF_TUTORIAL[name]
  assert 'ptb_word_lm.py' in readme
  for number in (valid, test, tf_valid, tf_test):
    assert str(number) in readme, number
