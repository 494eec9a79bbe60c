"""Times one recurrent layer of each linear-recurrence cell against the LSTM.

What is timed: forward + backward of ONE layer (gradients w.r.t. its params
and its inputs, jitted), inputs [B, T, D] f32 from a zero carry, for

  lstm                                   (cells.RecurrentLayer, the default backward)
  mingru, minlstm, lru, rglru            x  scan = associative | sequential

at B=20, D=H=256 and T in {35, 256, 1024} by default. All variants of one T
are timed in interleaved rounds (as scripts/benchmark.py); ms = median over
rounds of the round's mean. Two ratios per row:

  vs_lstm = LSTM ms / this ms   (> 1: faster than the LSTM layer)
  seq/assoc = sequential ms / associative ms of the same cell (> 1: the
              parallel scan is faster)

  python scripts/benchmark.py --layers                  # the default rows
  python scripts/benchmark_cells.py --seq-lens 35,256 --hidden 128 --out cells.json
"""

import argparse
import json
import os
import statistics
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)

CELLS = ('mingru', 'minlstm', 'lru', 'rglru')
SCANS = ('associative', 'sequential')


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--seq-lens', default='35,256,1024')
  p.add_argument('--batch', type=int, default=20)
  p.add_argument('--hidden', type=int, default=256, help='H = D')
  p.add_argument('--cells', default=','.join(CELLS))
  p.add_argument('--steps', type=int, default=12, help='timed steps per row')
  p.add_argument('--rounds', type=int, default=4)
  p.add_argument('--out', default='')
  args = p.parse_args(argv)
  args.seq_len_list = [int(t) for t in args.seq_lens.split(',') if t.strip()]
  args.cell_list = [c.strip() for c in args.cells.split(',') if c.strip()]
  unknown = sorted(set(args.cell_list) - set(CELLS))
  if unknown:
    p.error(f'--cells: unknown {unknown}; choose from {",".join(CELLS)}')
  args.rounds = max(1, min(args.rounds, args.steps))
  return args


class LayerRunner:
  """Forward + backward of one layer; `run(n)` does n steps, synced."""

  def __init__(self, cell: str, scan: str | None, batch: int, seq_len: int,
               hidden: int):
    import jax
    import jax.numpy as jnp
    from rnnlm_jax import models  # noqa: F401 (registers the cells)
    from rnnlm_jax.models import cells

    spec = cells.spec(cell)
    if spec.layer is None:
      layer = cells.RecurrentLayer(cell=cell, hidden_size=hidden)
    else:
      layer = spec.layer(hidden_size=hidden, scan=scan)
    key_x, key_p = jax.random.split(jax.random.key(0))
    self.x = jax.random.normal(key_x, (batch, seq_len, hidden))
    self.carry = cells.initial_carry(cell, batch, hidden)
    self.params = layer.init(key_p, self.x, self.carry)['params']

    def loss(params, x):
      out, last = layer.apply({'params': params}, x, self.carry)
      return jnp.mean(out**2) + sum(jnp.mean(c**2) for c in last)

    self._step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    self._jax, self.out = jax, None

  def run(self, n: int) -> None:
    for _ in range(n):
      self.out = self._step(self.params, self.x)
    self._jax.block_until_ready(self.out)


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def bench_seq_len(args, seq_len: int, log) -> list[dict]:
  variants = [('lstm', None)] + [(c, s) for c in args.cell_list for s in SCANS]
  runners = []
  for cell, scan in variants:
    runner = LayerRunner(cell, scan, args.batch, seq_len, args.hidden)
    compile_s = _timed(lambda r=runner: r.run(1))
    runner.run(1)  # warm-up
    runners.append((dict(cell=cell, scan=scan or 'lax.scan', seq_len=seq_len,
                         batch=args.batch, hidden=args.hidden,
                         compile_s=compile_s), runner))
  base, extra = divmod(args.steps, args.rounds)
  times = [[] for _ in runners]
  for r in range(args.rounds):
    n = base + (r < extra)
    for i, (_, runner) in enumerate(runners):
      times[i].append(_timed(lambda runner=runner, n=n: runner.run(n)) / n)
  rows = []
  for (row, _), ts in zip(runners, times):
    row.update(ms=1e3 * statistics.median(ts), ms_rounds=[1e3 * t for t in ts])
    rows.append(row)
  lstm_ms = rows[0]['ms']
  by_key = {(r['cell'], r['scan']): r for r in rows}
  for row in rows:
    row['vs_lstm'] = lstm_ms / row['ms']
    seq = by_key.get((row['cell'], 'sequential'))
    row['seq_over_assoc'] = (seq['ms'] / row['ms']
                             if row['scan'] == 'associative' and seq else None)
    log(format_row(row))
  return rows


HEADER = (f'{"T":>5} {"cell":<8} {"scan":<12} {"ms":>9} {"vs_lstm":>8} '
          f'{"seq/assoc":>9} {"compile_s":>9}')


def format_row(row: dict) -> str:
  ratio = row['seq_over_assoc']
  return (f'{row["seq_len"]:>5} {row["cell"]:<8} {row["scan"]:<12} '
          f'{row["ms"]:9.2f} {row["vs_lstm"]:8.2f} '
          f'{"" if ratio is None else f"{ratio:.2f}":>9} {row["compile_s"]:9.2f}')


def main(argv=None, log=print) -> dict:
  args = parse_args(argv)
  import jax
  log(f'JAX {jax.__version__} on {jax.devices()[0]}; one layer fwd+bwd, '
      f'B={args.batch}, D=H={args.hidden}; {args.steps} steps in '
      f'{args.rounds} interleaved rounds; ms = median over rounds')
  log(HEADER)
  result = {'args': {k: v for k, v in vars(args).items()},
            'load_average': os.getloadavg(), 'results': []}
  for seq_len in args.seq_len_list:
    result['results'].extend(bench_seq_len(args, seq_len, log))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=2)
      f.write('\n')
    log(f'wrote {args.out}')
  return result


if __name__ == '__main__':
  main()
