"""Where datasets live on this machine: one root folder, one subfolder each.

  data_root()            $RNNLM_JAX_DATA if set; else ../shared/data beside the
                         checkout if it exists; else ~/.cache/rnnlm_jax/data
  dataset_path('ptb')    <data root>/ptb (ptb.{train,valid,test}.txt)

Configs take their default `data.path` from here; `--config.data.path=...`
still overrides it, and `scripts/get_data.py` writes into the same root.
"""

import os

ENV_VAR = 'RNNLM_JAX_DATA'

# <checkout>/../shared/data: this file is <checkout>/rnnlm_jax/data/paths.py.
_BESIDE_CHECKOUT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))), 'shared', 'data')


def _cache_root() -> str:
  # An installed package has no checkout beside it; the user's cache is a
  # place that always exists to download into.
  cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(cache, 'rnnlm_jax', 'data')


def data_root() -> str:
  """The folder holding one subfolder per dataset (read at each call)."""
  root = os.environ.get(ENV_VAR, '').strip()
  if root:
    return os.path.abspath(os.path.expanduser(root))
  if os.path.isdir(_BESIDE_CHECKOUT):
    return _BESIDE_CHECKOUT
  return _cache_root()


def dataset_path(name: str) -> str:
  """<data root>/<name>, e.g. dataset_path('multi30k'); may not exist yet."""
  return os.path.join(data_root(), name)
