"""rnnlm_jax: recurrent language models and encoder-decoders in JAX.

From Python: `rnnlm_jax.train(config, workdir)` and `rnnlm_jax.load(workdir)`
(rnnlm_jax/api.py). They are imported on first use, so that importing the
package (e.g. for the command line's --help) does not start JAX.
"""

_API = ('train', 'load', 'TrainedRun')


def __getattr__(name):
  if name in _API:
    from rnnlm_jax import api  # pylint: disable=import-outside-toplevel
    return getattr(api, name)
  raise AttributeError(f'module rnnlm_jax has no attribute {name!r}')


def __dir__():
  return sorted(list(globals()) + list(_API))
