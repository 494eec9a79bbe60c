"""rnnlm_jax: recurrent language models and encoder-decoders in JAX.

From Python: `rnnlm_jax.train_and_evaluate(config, workdir)` and
`rnnlm_jax.load(workdir)` (rnnlm_jax/api.py; `rnnlm_jax.train` is the
training subpackage). They are imported on first use, so that importing the
package (e.g. for the command line's --help) does not start JAX.
"""


def __getattr__(name):
  if name in ('train_and_evaluate', 'load', 'TrainedRun'):
    from rnnlm_jax import api  # pylint: disable=import-outside-toplevel
    return getattr(api, 'train' if name == 'train_and_evaluate' else name)
  raise AttributeError(f'module rnnlm_jax has no attribute {name!r}')
