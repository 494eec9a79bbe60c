"""Registers the linear-recurrence cells in cells.CELLS on import:

  mingru, minlstm (min_rnn), lru (lru), rglru (rglru)

each a layer class of its own over the shared scan of linear_recurrence
(options: config `model.<cell>`, e.g. model.mingru = {'scan': 'sequential'}).
"""

from rnnlm_jax.models import lru  # noqa: F401
from rnnlm_jax.models import min_rnn  # noqa: F401
from rnnlm_jax.models import rglru  # noqa: F401

NAMES = ('mingru', 'minlstm', 'lru', 'rglru')
