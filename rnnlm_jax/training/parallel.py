"""Data parallelism with one `jax.sharding.Mesh` over every device of every host.

The batch (and the hidden state carried between BPTT windows, which is per row)
is split over the mesh's `data` axis; parameters and optimizer state are
replicated. jit then partitions the step itself: gradients are all-reduced by
XLA where the replicated parameters need them. This is JAX's replacement for
`pmap`; nothing here uses pmap.

Multi-host start: `jax.distributed.initialize()` when asked for.

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

import collections
import itertools
import os
from typing import Any, Iterable, Iterator

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes).

  The default orders devices by process, so every process's devices hold one
  contiguous block of batch rows (what `process_rows` hands it to load).
  """
  if devices is None:
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(np.asarray(list(devices)), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh, batch_size: int) -> NamedSharding:
  """Rows split over `data`; replicated when the batch does not divide.

  Batch-1 evaluation (the papers' test protocol) cannot be split over several
  devices, so it runs replicated instead of failing.
  """
  if batch_size % mesh.size == 0:
    return NamedSharding(mesh, P(DATA_AXIS))
  return replicated(mesh)


def check_divisible(batch_size: int, mesh: Mesh, key: str) -> None:
  if batch_size % mesh.size:
    raise ValueError(
        f'{key}={batch_size} is not divisible by the {mesh.size} devices; '
        f'use a multiple of {mesh.size}')


def process_rows(batch_size: int, sharding: NamedSharding) -> tuple[int, int]:
  """The global-batch rows [a, b) this process must load (its devices' rows)."""
  if sharding.spec == P():
    return 0, batch_size
  index_map = sharding.addressable_devices_indices_map((batch_size,))
  spans = sorted({(idx[0].start or 0,
                   batch_size if idx[0].stop is None else idx[0].stop)
                  for idx in index_map.values()})
  for (_, stop), (start, _) in zip(spans, spans[1:]):
    if stop != start:
      raise ValueError(
          f'process {jax.process_index()} holds batch rows {spans}, which are not '
          'contiguous: order the mesh devices by process (parallel.make_mesh does)')
  return spans[0][0], spans[-1][1]


def to_global(tree: Any, sharding: NamedSharding, global_batch: int) -> Any:
  """Host-local rows (numpy) -> global jax.Arrays laid out by `sharding`.

  On one host the local rows are the whole batch; on many, each process passes
  only the rows `process_rows` gave it.
  """
  if sharding.spec == P():
    return jax.device_put(tree, sharding)

  def put(x):
    shape = (global_batch,) + tuple(np.shape(x)[1:])
    return jax.make_array_from_process_local_data(sharding, np.asarray(x), shape)

  return jax.tree.map(put, tree)


def prefetch_to_device(batches: Iterable[Any], sharding: NamedSharding,
                       global_batch: int, size: int = 2) -> Iterator[Any]:
  """Yields `batches` as global device arrays, `size` transfers ahead.

  The host->device copy of the next window then overlaps the current step
  instead of sitting between two steps. Order and values are unchanged.
  """
  batches = iter(batches)
  queue = collections.deque()

  def enqueue(n: int) -> None:
    for batch in itertools.islice(batches, n):
      queue.append(to_global(batch, sharding, global_batch))

  enqueue(size)
  while queue:
    yield queue.popleft()
    enqueue(1)


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
