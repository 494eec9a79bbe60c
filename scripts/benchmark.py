"""Times the project's own train step against a PyTorch nn.LSTM reference.

What is timed is one full training step, forward + backward + optimizer update:

  JAX:   rnnlm_jax.training.steps.train_step on a state from create_train_state,
         a model from make_model and an optimizer from make_optimizer (the
         objects the training loop uses), with the hidden state carried from
         each step's output into the next, as truncated BPTT does.
  torch: nn.Embedding -> 2-layer nn.LSTM -> nn.Linear to V, cross-entropy
         (summed over time, mean over rows: the project's 'sequence'
         normalization), backward, clip_grad_norm_(5), SGD(lr=1) step, the
         hidden state detached and carried.

Shapes (Zaremba et al. 2014; V=10k, E=H):

  small  2x200,  B=20, T=20     medium  2x650,  B=20, T=35
  large  2x1500, B=20, T=35     small128 / medium128 / large128: B=128

JAX and torch rounds are interleaved (jax, torch, jax, torch, ...), so noise
from a shared machine hits both alike; each round runs `steps / rounds` steps
back to back and is closed by block_until_ready (JAX) or
torch.cuda.synchronize (CUDA). ms/step is the median over rounds of the
round's mean; ratio = torch ms / jax ms (> 1: JAX faster).

  python scripts/benchmark.py --shapes small,medium,small128 --out bench.json
  python scripts/benchmark.py --shapes small --unroll 1,8 --dtype float32,bfloat16
  python scripts/benchmark.py --shapes medium --backward autodiff,after_loop
  python scripts/benchmark.py --shapes small --seq-lens 35,256,1024 \
      --cells lstm,slstm,mlstm --no-torch     # the xLSTM cells beside the LSTM
  python scripts/benchmark.py --tiny          # seconds; what the test runs
  python scripts/benchmark.py --layers [ARGS] # one layer of the linear-recurrence
                                              # cells vs the LSTM (benchmark_cells.py)

--cells adds a JAX row per cell (same shape, heads 4, mLSTM chunks of 64);
`vs_lstm` = the JAX LSTM row's ms / the cell's ms (> 1: the cell is faster).
--seq-lens replaces each shape's T by each listed length.

PyTorch is optional: without it only the JAX rows are printed.
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)

import numpy as np  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Shape:
  name: str
  vocab: int
  layers: int
  hidden: int
  batch: int
  seq_len: int

  @property
  def tokens(self) -> int:
    return self.batch * self.seq_len


SHAPES = {
    'small': Shape('small', 10_000, 2, 200, 20, 20),
    'medium': Shape('medium', 10_000, 2, 650, 20, 35),
    'large': Shape('large', 10_000, 2, 1500, 20, 35),
    'small128': Shape('small128', 10_000, 2, 200, 128, 20),
    'medium128': Shape('medium128', 10_000, 2, 650, 128, 35),
    'large128': Shape('large128', 10_000, 2, 1500, 128, 35),
}
TINY = Shape('tiny', 50, 2, 16, 8, 5)


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--shapes', default='small,medium',
                 help=f'comma list of {",".join(SHAPES)}')
  p.add_argument('--steps', type=int, default=60,
                 help='timed steps per shape and variant (split into rounds)')
  p.add_argument('--rounds', type=int, default=6,
                 help='interleaved rounds the timed steps are split into')
  p.add_argument('--warmup', type=int, default=5,
                 help='untimed steps after the first (compiling) call')
  p.add_argument('--dtype', default='float32',
                 help='comma list of float32 | bfloat16 (matmul dtype; torch: '
                 'autocast to bfloat16)')
  p.add_argument('--unroll', default='0',
                 help='comma list of lax.scan unroll factors (0: the config '
                 'default, 1 on CPU and 8 on accelerators)')
  p.add_argument('--backward', default='',
                 help='comma list of model.recurrent_backward values to compare: '
                 'after_loop (the default) | autodiff')
  p.add_argument('--cells', default='lstm',
                 help='comma list of model.cell values, one JAX row each '
                 '(e.g. lstm,slstm,mlstm); torch stays an LSTM')
  p.add_argument('--seq-lens', default='',
                 help='comma list of T: each shape once per T (name@T)')
  p.add_argument('--device', choices=('cpu', 'gpu'), default='cpu',
                 help='cpu: JAX on its CPU devices, torch on CPU; gpu: JAX on '
                 'its default backend, torch on cuda if available')
  p.add_argument('--no-torch', action='store_true', help='JAX rows only')
  p.add_argument('--torch-threads', default='0',
                 help='comma list of torch.set_num_threads values, one torch '
                 'row each (0: torch\'s default, the number of cores)')
  p.add_argument('--tiny', action='store_true',
                 help='a tiny shape and few steps (seconds; for the test)')
  p.add_argument('--out', default='', help='write the results as JSON here')
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  if args.tiny:
    args.steps, args.rounds, args.warmup = 4, 2, 1
  if args.steps < 1 or args.rounds < 1 or args.warmup < 0:
    p.error('--steps and --rounds must be >= 1, --warmup >= 0')
  args.rounds = min(args.rounds, args.steps)
  if args.tiny:
    args.shape_list = [TINY]
  else:
    names = [s.strip() for s in args.shapes.split(',') if s.strip()]
    unknown = [n for n in names if n not in SHAPES]
    if unknown or not names:
      p.error(f'--shapes: unknown {unknown}; choose from {",".join(SHAPES)}')
    args.shape_list = [SHAPES[n] for n in names]
    try:
      seq_lens = [int(t) for t in args.seq_lens.split(',') if t.strip()]
    except ValueError:
      p.error(f'--seq-lens must be a comma list of ints, got {args.seq_lens!r}')
    if any(t < 1 for t in seq_lens):
      p.error('--seq-lens values must be >= 1')
    if seq_lens:
      args.shape_list = [dataclasses.replace(s, name=f'{s.name}@T{t}', seq_len=t)
                         for s in args.shape_list for t in seq_lens]
  args.cell_list = [c.strip() for c in args.cells.split(',') if c.strip()]
  if not args.cell_list:
    p.error('--cells must name at least one cell')
  args.dtypes = [d.strip() for d in args.dtype.split(',') if d.strip()]
  if not args.dtypes or any(d not in ('float32', 'bfloat16') for d in args.dtypes):
    p.error(f'--dtype must be float32 and/or bfloat16, got {args.dtype!r}')
  try:
    args.unrolls = [int(u) for u in args.unroll.split(',') if u.strip()]
  except ValueError:
    p.error(f'--unroll must be a comma list of ints, got {args.unroll!r}')
  if not args.unrolls or any(u < 0 for u in args.unrolls):
    p.error('--unroll values must be >= 0')
  args.backwards = [b.strip() for b in args.backward.split(',') if b.strip()]
  if any(b not in ('autodiff', 'after_loop') for b in args.backwards):
    p.error(f'--backward must be after_loop and/or autodiff, got {args.backward!r}')
  args.backwards = args.backwards or [None]  # None: the config's default
  try:
    args.torch_thread_list = [int(n) for n in args.torch_threads.split(',')
                              if n.strip()] or [0]
  except ValueError:
    p.error(f'--torch-threads must be a comma list of ints, got {args.torch_threads!r}')
  return args


# ----------------------------------------------------------------- JAX side


class JaxRunner:
  """The project's train step on one shape; `run(n)` does n steps, synced."""

  def __init__(self, shape: Shape, dtype: str, unroll: int, devices, seed: int,
               backward: str | None = None, cell: str = 'lstm'):
    import jax
    from rnnlm_jax import configs, data, models
    from rnnlm_jax.training import scoring
    from rnnlm_jax.training import optim, parallel, steps
    from rnnlm_jax.training.steps import train_step

    self._jax, self._train_step = jax, train_step
    config = configs.base_config()
    m, t = config.model, config.train
    m.cell, m.num_layers = cell, shape.layers
    m.hidden_size = m.embed_size = shape.hidden
    m.dtype, m.unroll, m.init_scale = dtype, unroll, 0.1
    if backward:
      m.recurrent_backward = backward
    # Zaremba's recipe: SGD lr 1, step decay, global-norm clip 5, loss summed
    # over time and averaged over rows (base_config's defaults, spelled out).
    t.batch_size, t.seq_len = shape.batch, shape.seq_len
    t.optimizer, t.learning_rate, t.clip_norm = 'sgd', 1.0, 5.0
    t.loss_normalization = 'sequence'
    self.loss_normalization = t.loss_normalization
    self.model = models.make_model(m, shape.vocab)
    self.unroll = self.model.unroll  # the resolved value (0 -> 1 or 8)
    self.backward = ('after_loop' if self.model.weight_grad_after_loop
                     else 'autodiff')  # the resolved value
    mesh = parallel.make_mesh(devices)
    parallel.check_divisible(shape.batch, mesh, 'batch')
    tx, _ = optim.make_optimizer(t, 1000, 100_000)
    self.state = steps.create_train_state(
        self.model, tx, seed, shape.batch, shape.seq_len,
        parallel.replicated(mesh))
    sharding = parallel.batch_sharded(mesh, shape.batch)
    self.carry = scoring.initial_carry(self.model, shape.batch, sharding)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, shape.vocab, (shape.batch, shape.seq_len + 1),
                          dtype=np.int32)
    batch = data.Batch(tokens[:, :-1], tokens[:, 1:],
                       np.ones((shape.batch, shape.seq_len), np.float32))
    self.batch = parallel.to_global(batch, sharding, shape.batch)
    self.metrics = None

  def run(self, num_steps: int) -> None:
    for _ in range(num_steps):
      self.state, self.carry, self.metrics = self._train_step(
          self.state, self.batch, self.carry,
          loss_normalization=self.loss_normalization)
    # Async dispatch: the clock stops only when every output exists.
    self._jax.block_until_ready((self.state, self.carry, self.metrics))

  def loss(self) -> float:
    return float(self.metrics['loss'])


# --------------------------------------------------------------- torch side


def import_torch():
  try:
    import torch  # noqa: F401
    return torch
  except Exception:  # ImportError, or a broken install (OSError, ...)
    return None


class TorchRunner:
  """The same model in PyTorch: embedding -> nn.LSTM -> linear, SGD + clip."""

  def __init__(self, torch, shape: Shape, dtype: str, device: str, seed: int,
               threads: int):
    nn = torch.nn
    torch.manual_seed(seed)
    self.torch, self.device, self.shape = torch, device, shape
    # A process-wide setting: set before each round, so rows may differ.
    self.threads = threads or torch.get_num_threads()
    self.autocast = dtype == 'bfloat16'
    self.embedding = nn.Embedding(shape.vocab, shape.hidden)
    self.lstm = nn.LSTM(shape.hidden, shape.hidden, num_layers=shape.layers,
                        batch_first=True)
    self.output = nn.Linear(shape.hidden, shape.vocab)
    self.modules = nn.ModuleList([self.embedding, self.lstm, self.output])
    self.modules.to(device)
    with torch.no_grad():
      for p in self.modules.parameters():
        p.uniform_(-0.1, 0.1)
    self.params = list(self.modules.parameters())
    self.opt = torch.optim.SGD(self.params, lr=1.0)
    rng = np.random.default_rng(seed)
    tokens = torch.from_numpy(rng.integers(
        0, shape.vocab, (shape.batch, shape.seq_len + 1)).astype(np.int64))
    self.inputs = tokens[:, :-1].contiguous().to(device)
    self.targets = tokens[:, 1:].contiguous().reshape(-1).to(device)
    zeros = torch.zeros(shape.layers, shape.batch, shape.hidden, device=device)
    self.hidden = (zeros, zeros.clone())
    self.last_loss = None

  def _step(self) -> None:
    torch, s = self.torch, self.shape
    hidden = tuple(h.detach() for h in self.hidden)  # truncated BPTT
    with torch.autocast(device_type=self.device, dtype=torch.bfloat16,
                        enabled=self.autocast):
      x = self.embedding(self.inputs)
      out, hidden = self.lstm(x, hidden)
      logits = self.output(out).reshape(-1, s.vocab)
    nll = torch.nn.functional.cross_entropy(logits.float(), self.targets,
                                            reduction='sum')
    loss = nll / s.batch  # summed over time, mean over rows ('sequence')
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.params, 5.0)
    self.opt.step()
    self.hidden = tuple(h.float() for h in hidden)
    self.last_loss = nll.detach()

  def run(self, num_steps: int) -> None:
    if self.torch.get_num_threads() != self.threads:
      self.torch.set_num_threads(self.threads)
    for _ in range(num_steps):
      self._step()
    if self.device == 'cuda':
      self.torch.cuda.synchronize()

  def loss(self) -> float:
    return float(self.last_loss) / self.shape.tokens


# ------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def split_steps(total: int, rounds: int) -> list[int]:
  base, extra = divmod(total, rounds)
  return [base + (i < extra) for i in range(rounds)]


def bench_shape(shape: Shape, args, devices, torch, torch_device, log) -> list[dict]:
  """All variants of one shape, their rounds interleaved; one row each."""
  variants = []  # (row, runner)
  default_threads = torch.get_num_threads() if torch is not None else 0
  for dtype in args.dtypes:
    for unroll in args.unrolls:
      for backward in args.backwards:
        for cell in args.cell_list:
          runner = JaxRunner(shape, dtype, unroll, devices, args.seed, backward,
                             cell)
          row = dict(shape=shape.name, framework='jax', dtype=dtype, cell=cell,
                     unroll=runner.unroll, unroll_arg=unroll,
                     backward=runner.backward, backward_arg=backward)
          row['compile_s'] = timed(lambda r=runner: r.run(1))  # trace+compile+1 step
          variants.append((row, runner))
    for threads in (args.torch_thread_list if torch is not None else ()):
      runner = TorchRunner(torch, shape, dtype, torch_device, args.seed,
                           threads or default_threads)
      row = dict(shape=shape.name, framework='torch', dtype=dtype,
                 device=torch_device, threads=runner.threads)
      row['first_step_s'] = timed(lambda r=runner: r.run(1))
      variants.append((row, runner))
  for _, runner in variants:
    runner.run(args.warmup)
  per_round = split_steps(args.steps, args.rounds)
  times = [[] for _ in variants]
  for n in per_round:
    for i, (_, runner) in enumerate(variants):
      times[i].append(timed(lambda r=runner, n=n: r.run(n)) / n)
  rows = []
  for (row, runner), ts in zip(variants, times):
    ms = 1e3 * statistics.median(ts)
    row.update(
        ms_per_step=ms, tokens_per_s=shape.tokens / (ms / 1e3),
        ms_per_step_min=1e3 * min(ts), ms_per_step_rounds=[1e3 * t for t in ts],
        steps=args.steps, rounds=len(per_round), warmup=args.warmup,
        loss=runner.loss(), vocab=shape.vocab, layers=shape.layers,
        hidden=shape.hidden, batch=shape.batch, seq_len=shape.seq_len,
        tokens_per_step=shape.tokens)
    rows.append(row)
  for row in rows:  # ratio = torch ms / jax ms, against the same-dtype torch
    if row['framework'] != 'jax':
      continue
    refs = [r for r in rows if r['framework'] == 'torch' and r['dtype'] == row['dtype']]
    # `ratio`: against the fastest torch row (the conservative one);
    # `ratios`: against each torch thread count.
    best = min(refs, key=lambda r: r['ms_per_step']) if refs else None
    row['ratio'] = best['ms_per_step'] / row['ms_per_step'] if best else None
    row['ratios'] = {f'torch_threads={r["threads"]}':
                     r['ms_per_step'] / row['ms_per_step'] for r in refs}
    lstm = [r for r in rows if r['framework'] == 'jax' and r['cell'] == 'lstm'
            and all(r[k] == row[k] for k in ('dtype', 'unroll', 'backward'))]
    row['vs_lstm'] = lstm[0]['ms_per_step'] / row['ms_per_step'] if lstm else None
  for row in rows:
    log(format_row(row))
  return rows


# ------------------------------------------------------------------- output


HEADER = (f'{"shape":<12} {"framework":<42} {"dtype":<9} {"ms/step":>9} '
          f'{"tokens/s":>10} {"ratio":>6} {"compile_s":>9} {"vs_lstm":>7}')


def format_row(row: dict) -> str:
  name = row['framework']
  if name == 'jax':
    name += f' unroll={row["unroll"]}' + (' (default)' if row['unroll_arg'] == 0 else '')
    if row['backward_arg']:
      name += f' {row["backward"]}'
    name += f' {row["cell"]}'
  else:
    name += f' {row["device"]} {row["threads"]}thr'
  ratio = '' if row.get('ratio') is None else f'{row["ratio"]:.2f}'
  compile_s = f'{row["compile_s"]:.2f}' if 'compile_s' in row else ''
  vs_lstm = f'{row["vs_lstm"]:.2f}' if row.get('vs_lstm') else ''
  return (f'{row["shape"]:<12} {name:<42} {row["dtype"]:<9} '
          f'{row["ms_per_step"]:9.2f} {row["tokens_per_s"]:10,.0f} {ratio:>6} '
          f'{compile_s:>9} {vs_lstm:>7}')


def machine_info(jax, torch, devices) -> dict:
  info = {
      'python': platform.python_version(), 'platform': platform.platform(),
      'processor': _cpu_name(), 'cpu_count': os.cpu_count(),
      'jax': jax.__version__, 'jax_backend': jax.default_backend(),
      'jax_devices': [str(d) for d in devices],
      'XLA_FLAGS': os.environ.get('XLA_FLAGS', ''),
      'torch': None if torch is None else torch.__version__,
  }
  info['load_average'] = os.getloadavg() if hasattr(os, 'getloadavg') else None
  try:
    import flax
    info['flax'] = flax.__version__
  except Exception:  # pragma: no cover
    pass
  if torch is not None:
    info['torch_threads'] = torch.get_num_threads()
  return info


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def main(argv=None, log: Callable[[str], None] = print) -> dict:
  argv = sys.argv[1:] if argv is None else list(argv)
  if '--layers' in argv:  # the layer rows: their own options
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import benchmark_cells
    return benchmark_cells.main([a for a in argv if a != '--layers'], log)
  args = parse_args(argv)
  import jax

  if args.device == 'cpu':
    devices = jax.devices('cpu')[:1]
  else:
    devices = jax.devices()[:1]
    if jax.default_backend() == 'cpu':
      log('warning: --device gpu but JAX has no accelerator; JAX runs on CPU')
  torch, torch_device = None, 'cpu'
  if not args.no_torch:
    torch = import_torch()
    if torch is None:
      log('torch was not found (import torch failed): JAX numbers only')
    else:
      if args.device == 'gpu':
        if torch.cuda.is_available():
          torch_device = 'cuda'
        else:
          log('warning: --device gpu but torch has no CUDA; torch runs on CPU')
  result = {'machine': machine_info(jax, torch, devices),
            'args': {k: v for k, v in vars(args).items() if k != 'shape_list'},
            'torch_found': torch is not None, 'results': []}
  log(f'JAX {jax.__version__} on {devices[0]} ({jax.default_backend()}); '
      + (f'torch {torch.__version__} on {torch_device} '
         f'({torch.get_num_threads()} threads)' if torch is not None else
         'no torch') + f'; {args.steps} steps in {args.rounds} interleaved '
      f'rounds after {args.warmup} warmup; ms/step = median over rounds')
  log(HEADER)
  for shape in args.shape_list:
    result['results'].extend(bench_shape(shape, args, devices, torch,
                                         torch_device, log))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=2)
      f.write('\n')
    log(f'wrote {args.out}')
  return result


if __name__ == '__main__':
  main()
