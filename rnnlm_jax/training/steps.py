"""The training state and the pure, jit-compiled train and eval steps.

Both take the global batch; under jit with the batch sharded over the mesh's
`data` axis XLA turns the sums into all-reduces, so the same code runs on one
CPU or on every device of a TPU slice.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from rnnlm_jax.data import Batch  # inputs, targets int32 [B, T]; mask float32 [B, T]
from rnnlm_jax.models import regularizers

Carry = Any  # tuple over layers of tuples of [B, H] float32 arrays

class TrainState(train_state.TrainState):
  """flax's TrainState plus the dropout base key and a divergence counter.

  rng: raw uint32 key (not a typed key, so Orbax saves it like any array)
    that per-step dropout keys are folded from.
  nonfinite_run: int32, consecutive steps skipped for a NaN/inf loss or
    gradient norm.
  """
  rng: jax.Array
  nonfinite_run: jax.Array


def create_train_state(model, tx: optax.GradientTransformation, seed: int,
                       batch_size: int, seq_len: int,
                       sharding: jax.sharding.Sharding | None = None) -> TrainState:
  """Initializes parameters from `seed` (same seed, same params on every host).

  One jit for init + optimizer init: op-by-op it would compile dozens of tiny
  programs. `sharding` (e.g. replicated over the mesh) places the result.
  """

  def init(seed_key):
    init_key, dropout_key = jax.random.split(seed_key)
    # The model's own example inputs (an encoder-decoder takes a tuple), else
    # a [B, T] token batch.
    make_inputs = getattr(model, 'example_inputs', None)
    tokens = (make_inputs(batch_size, seq_len) if make_inputs else
              jnp.zeros((batch_size, seq_len), jnp.int32))
    carry = model.initial_carry(batch_size)
    params = model.init({'params': init_key}, tokens, carry, train=False)['params']
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                             rng=dropout_key,
                             nonfinite_run=jnp.zeros((), jnp.int32))

  return jax.jit(init, out_shardings=sharding)(jax.random.PRNGKey(seed))


def checkpointable(state: TrainState) -> dict[str, Any]:
  """The array part of the state (what Orbax stores; apply_fn/tx are code)."""
  return {'step': state.step, 'params': state.params,
          'opt_state': state.opt_state, 'rng': state.rng,
          'nonfinite_run': state.nonfinite_run}


def from_checkpointable(state: TrainState, tree: dict[str, Any]) -> TrainState:
  return state.replace(**tree)



def token_nll(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked per-token negative log-likelihood, nats [B, T]."""
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  return nll * mask


def smoothed_token_loss(logits: jax.Array, targets: jax.Array, mask: jax.Array,
                        label_smoothing: float) -> tuple[jax.Array, jax.Array]:
  """(smoothed, nll), both masked, [B, T]: the cross-entropy against the
  target smoothed towards the uniform distribution, (1 - eps) * NLL + eps *
  mean_v(-log p_v) -- optax.smooth_labels(one_hot, eps) without
  materializing [B, T, V] targets -- and the plain NLL, from one
  log-softmax."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  uniform = -log_probs.mean(axis=-1)
  smoothed = (1.0 - label_smoothing) * nll + label_smoothing * uniform
  return smoothed * mask, nll * mask


def activation_penalties(intermediates, mask: jax.Array, ar_alpha: float,
                         tar_beta: float) -> dict[str, jax.Array]:
  """AWD-LSTM's AR and TAR terms (scaled) from the model's sown outputs.

  intermediates: the 'intermediates' collection of RecurrentLM, holding
  'last_dropped' and 'last_raw' [B, T, H_last]; mask [B, T].
  Returns {'ar': alpha * mean(dropped^2), 'tar': beta * mean(diff_t(raw)^2)}
  for the terms whose coefficient is > 0.
  """
  out = {}
  if ar_alpha > 0:
    dropped = intermediates['last_dropped'][0]
    out['ar'] = ar_alpha * regularizers.activation_reg(dropped, mask)
  if tar_beta > 0:
    raw = intermediates['last_raw'][0]
    out['tar'] = tar_beta * regularizers.temporal_activation_reg(raw, mask)
  return out


def _apply_train(state: TrainState, params, batch: Batch, carry: Carry,
                 dropout_key: jax.Array, ar_alpha: float, tar_beta: float):
  """Training forward pass -> (logits, new carry, penalties dict).

  Only asks the model for its activations when AR/TAR is on, so the default
  graph is exactly the plain forward pass.
  """
  if ar_alpha <= 0 and tar_beta <= 0:
    logits, new_carry = state.apply_fn(
        {'params': params}, batch.model_inputs, carry, train=True,
        rngs={'dropout': dropout_key})
    return logits, new_carry, {}
  (logits, new_carry), variables = state.apply_fn(
      {'params': params}, batch.model_inputs, carry, train=True,
      rngs={'dropout': dropout_key}, mutable=['intermediates'])
  penalties = activation_penalties(variables['intermediates'], batch.mask,
                                   ar_alpha, tar_beta)
  return logits, new_carry, penalties


@functools.partial(jax.jit, donate_argnames=('state', 'carry'),
                   static_argnames=('loss_normalization', 'ar_alpha', 'tar_beta',
                                    'label_smoothing'))
def train_step(state: TrainState, batch: Batch, carry: Carry,
               loss_normalization: str = 'token', ar_alpha: float = 0.0,
               tar_beta: float = 0.0, lr_scale: jax.Array | None = None,
               label_smoothing: float = 0.0):
  """One TBPTT update on one window.

  Args:
    state: the training state (donated: its buffers are reused).
    batch: inputs/targets/mask [B, T].
    carry: the hidden state after the previous window (donated). It enters as
      a constant, so no gradient flows into earlier windows (truncated BPTT).
    loss_normalization: 'token' (mean over real tokens) or 'sequence' (summed
      over time, mean over rows, as Zaremba et al.'s code).
    ar_alpha, tar_beta: AWD-LSTM activation / temporal activation
      regularization coefficients (0: off); the terms are added to the
      normalized loss that is differentiated, never to the reported 'loss'
      (which stays the NLL), and reported as 'ar' / 'tar' when on.
    lr_scale: None, or an f32 [] factor on this step's learning rate (variable
      BPTT); a traced value, so every factor shares one compilation. Needs an
      optimizer built with train.variable_bptt (optim.scale_by_lr_factor).
    label_smoothing: eps of the smoothed cross-entropy that is differentiated
      (0: plain NLL); the reported 'loss' stays the NLL.

  Returns:
    (new state, carry for the next window, metrics dict of scalars).
  """
  dropout_key = jax.random.fold_in(state.rng, state.step)
  num_tokens = jnp.maximum(batch.mask.sum(), 1.0)
  denominator = (batch.inputs.shape[0] if loss_normalization == 'sequence'
                 else num_tokens)

  def loss_fn(params):
    logits, new_carry, penalties = _apply_train(
        state, params, batch, carry, dropout_key, ar_alpha, tar_beta)
    if label_smoothing:
      smoothed, nll = smoothed_token_loss(logits, batch.targets, batch.mask,
                                          label_smoothing)
      total, total_nll = smoothed.sum(), nll.sum()
    else:
      total = total_nll = token_nll(logits, batch.targets, batch.mask).sum()
    loss = total / denominator
    for term in penalties.values():
      loss = loss + term
    return loss, (total_nll, new_carry, penalties)

  grads, (total_nll, new_carry, penalties) = jax.grad(
      loss_fn, has_aux=True)(state.params)
  grad_norm = optax.global_norm(grads)
  finite = jnp.isfinite(total_nll) & jnp.isfinite(grad_norm)
  if lr_scale is None:
    updated = state.apply_gradients(grads=grads)
  else:
    updated = _apply_scaled(state, grads, lr_scale)
  new_state = skip_unless(finite, updated, state)
  new_carry = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                           new_carry, carry)
  metrics = {'loss': total_nll / num_tokens, 'grad_norm': grad_norm,
             'tokens': num_tokens, 'skipped': 1.0 - finite.astype(jnp.float32),
             'nonfinite_run': new_state.nonfinite_run, **penalties}
  return new_state, new_carry, metrics


def _apply_scaled(state: TrainState, grads, lr_scale: jax.Array) -> TrainState:
  """state.apply_gradients, passing lr_scale to the optimizer chain."""
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params,
                                       lr_scale=lr_scale)
  return state.replace(step=state.step + 1,
                       params=optax.apply_updates(state.params, updates),
                       opt_state=opt_state)


def skip_unless(finite: jax.Array, updated: TrainState,
                old: TrainState) -> TrainState:
  """`updated` if the step was finite; else `old` with only the step advanced.

  The step always advances: it is the data position, and the window that
  produced NaN/inf is consumed rather than retried forever. `nonfinite_run`
  counts consecutive skipped steps so the loop can give up on a diverged run.
  """
  keep = lambda new, prev: jnp.where(finite, new, prev)
  return updated.replace(
      params=jax.tree.map(keep, updated.params, old.params),
      opt_state=jax.tree.map(keep, updated.opt_state, old.opt_state),
      nonfinite_run=jnp.where(finite, 0, old.nonfinite_run + 1))


@functools.partial(jax.jit, static_argnames=('model',),
                   donate_argnames=('carry',))
def eval_step(params, model, batch: Batch, carry: Carry):
  """Summed NLL (nats) and token count of one window, and the next carry."""
  logits, new_carry = model.apply({'params': params}, batch.model_inputs, carry,
                                  train=False)
  nll = token_nll(logits, batch.targets, batch.mask)
  return nll.sum(), batch.mask.sum(), new_carry
