"""Parameter count and train-step time of models.Seq2Seq at a given shape.

  python scripts/seq2seq_step_time.py            # bentrevett's attention model
  python scripts/seq2seq_step_time.py --steps 5 --batch 128 --length 30

Times one jitted step (forward, backward, Adam) on random ids, the median
of --steps after one warm-up (compile) step, for teacher forcing and, side
by side in the same process, for scheduled sampling (teacher_forcing=0.5,
whose output layer runs inside the decoder's scan).
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnlm_jax.models import seq2seq
from rnnlm_jax.models.rnn_lm import count_params


def train_step(model, optimizer):
  def loss_fn(params, source, mask, inputs, targets, key):
    logits = model.apply({'params': params}, source, mask, inputs, train=True,
                         rngs={'dropout': key})
    return -jnp.mean(seq2seq.token_log_probs(logits, targets))

  @jax.jit
  def step(params, opt_state, source, mask, inputs, targets, key):
    loss, grads = jax.value_and_grad(loss_fn)(params, source, mask, inputs, targets, key)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return step


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--source_vocab', type=int, default=7853)
  parser.add_argument('--target_vocab', type=int, default=5893)
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--length', type=int, default=30)
  parser.add_argument('--steps', type=int, default=5)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  b, n = args.batch, args.length
  source = jnp.asarray(rng.integers(3, args.source_vocab, (b, n)), jnp.int32)
  mask = jnp.ones((b, n), jnp.float32)
  inputs = jnp.asarray(rng.integers(3, args.target_vocab, (b, n)), jnp.int32)
  targets = jnp.asarray(rng.integers(3, args.target_vocab, (b, n)), jnp.int32)
  model = seq2seq.Seq2Seq(args.source_vocab, args.target_vocab)
  params = jax.jit(model.init, static_argnames='train')(
      jax.random.PRNGKey(0), source, mask, inputs, train=False)['params']
  print(f'params: {count_params(params):,}  device: {jax.devices()[0]}')
  optimizer = optax.adam(1e-3)
  times = {}
  for name, m in (('teacher_forcing=1', model),
                  ('teacher_forcing=0.5', model.clone(teacher_forcing=0.5))):
    step = train_step(m, optimizer)
    p, opt_state = params, optimizer.init(params)
    key = jax.random.PRNGKey(1)
    samples = []
    for i in range(args.steps + 1):
      key, sub = jax.random.split(key)
      start = time.perf_counter()
      p, opt_state, loss = step(p, opt_state, source, mask, inputs, targets, sub)
      loss.block_until_ready()
      if i:
        samples.append(time.perf_counter() - start)
    times[name] = statistics.median(samples)
    print(f'{name}: median step {times[name]:.3f} s over {args.steps} steps '
          f'(B={b}, S=T={n}), loss {float(loss):.3f}')
  print('ratio scheduled / teacher forcing: '
        f"{times['teacher_forcing=0.5'] / times['teacher_forcing=1']:.2f}")


if __name__ == '__main__':
  main()
