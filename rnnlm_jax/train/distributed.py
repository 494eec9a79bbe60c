"""Multi-host start: `jax.distributed.initialize()` when asked for.

Enabled by the environment, so the same command runs on a laptop and on every
worker of a TPU VM slice (as big_vision does):

  RNNLM_JAX_DISTRIBUTED=1      initialize; on TPU VMs / SLURM / GKE JAX finds
                               the coordinator and process ids itself.
  RNNLM_JAX_COORDINATOR=host:port, RNNLM_JAX_NUM_PROCESSES=N,
  RNNLM_JAX_PROCESS_ID=i       explicit cluster (e.g. N processes on one machine).
  RNNLM_JAX_INIT_TIMEOUT=s     seconds to wait for every process to join
                               (default 300, JAX's).

CPU processes (tests, a cluster of CPU machines) exchange data through gloo;
it is selected here for JAX versions whose default is no CPU collectives.
"""

import os

import jax
from absl import logging
from jax.experimental import multihost_utils


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
  if env.get('RNNLM_JAX_INIT_TIMEOUT'):
    kwargs['initialization_timeout'] = int(env['RNNLM_JAX_INIT_TIMEOUT'])
  _use_gloo_on_cpu()
  jax.distributed.initialize(**kwargs)
  logging.info('process %d of %d; %d local / %d global devices',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True


def _use_gloo_on_cpu() -> None:
  """Cross-process CPU collectives (gloo; JAX >= 0.5 defaults to it).

  Must run before the backend starts; harmless where no CPU devices are used.
  """
  try:
    current = jax.config.jax_cpu_collectives_implementation
  except AttributeError:  # a JAX without the option
    return
  if current in (None, '', 'none'):
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')


def sync(name: str) -> None:
  """Barrier: every process waits here until all have arrived (no-op on one).

  Used around files process 0 writes and the others read (config.json,
  vocab.json), so that no process reads a half-written file.
  """
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
