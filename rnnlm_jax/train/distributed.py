"""Multi-host start: `jax.distributed.initialize()` when asked for.

Enabled by the environment, so the same command runs on a laptop and on every
worker of a TPU VM slice (as big_vision does):

  RNNLM_JAX_DISTRIBUTED=1      initialize; on TPU VMs / SLURM / GKE JAX finds
                               the coordinator and process ids itself.
  RNNLM_JAX_COORDINATOR=host:port, RNNLM_JAX_NUM_PROCESSES=N,
  RNNLM_JAX_PROCESS_ID=i       explicit cluster (e.g. N processes on one machine).
"""

import os

import jax
from absl import logging


def initialize_if_requested() -> bool:
  env = os.environ
  coordinator = env.get('RNNLM_JAX_COORDINATOR')
  if not coordinator and env.get('RNNLM_JAX_DISTRIBUTED', '0') in ('', '0'):
    return False
  kwargs = {}
  if coordinator:
    kwargs = dict(coordinator_address=coordinator,
                  num_processes=int(env['RNNLM_JAX_NUM_PROCESSES']),
                  process_id=int(env['RNNLM_JAX_PROCESS_ID']))
  jax.distributed.initialize(**kwargs)
  logging.info('process %d of %d; %d local / %d global devices',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True
