"""Optimizers and learning-rate schedules (optax), built from `config.train`."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from rnnlm_jax.train import ntasgd

OPTIMIZERS = ('sgd', 'momentum', 'adam', 'adamw', 'ntasgd')
SCHEDULES = ('constant', 'step_decay', 'cosine', 'linear')


def step_decay_schedule(base_lr: float, steps_per_epoch: int,
                        decay_start_epoch: int, decay_rate: float) -> optax.Schedule:
  """Zaremba et al. (2014): constant for `decay_start_epoch` epochs, then x decay_rate per epoch.

  Epoch e (0-based) trains at base_lr * decay_rate ** max(e + 1 - decay_start_epoch, 0),
  the TF PTB tutorial's `lr_decay` rule. A closed form rather than
  `piecewise_constant_schedule`, whose dict would need one entry per epoch.
  """

  def schedule(step):
    epoch = step // steps_per_epoch
    return base_lr * decay_rate ** jnp.maximum(epoch + 1 - decay_start_epoch, 0)

  return schedule


def make_schedule(train: ml_collections.ConfigDict, steps_per_epoch: int,
                  total_steps: int) -> optax.Schedule:
  lr = train.learning_rate
  if train.schedule == 'constant':
    main = optax.constant_schedule(lr)
  elif train.schedule == 'step_decay':
    main = step_decay_schedule(lr, steps_per_epoch, train.decay_start_epoch,
                               train.decay_rate)
  elif train.schedule == 'cosine':
    main = optax.cosine_decay_schedule(lr, max(total_steps - train.warmup_steps, 1))
  elif train.schedule == 'linear':
    main = optax.linear_schedule(lr, 0.0, max(total_steps - train.warmup_steps, 1))
  else:
    raise ValueError(
        f'train.schedule={train.schedule!r} is not one of {SCHEDULES}')
  if train.warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, lr, train.warmup_steps)
  return optax.join_schedules([warmup, main], [train.warmup_steps])


def scale_by_lr_factor() -> optax.GradientTransformationExtraArgs:
  """Multiplies the final updates by the extra argument `lr_scale` ([] f32).

  Last in the chain, so it scales the learning rate exactly whatever the
  optimizer; without the argument (flax's apply_gradients) it is the identity.
  Used by variable BPTT (AWD: lr * len / T).
  """

  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None, *, lr_scale=None, **extra_args):
    del params, extra_args
    if lr_scale is None:
      return updates, state
    return jax.tree.map(lambda u: u * lr_scale, updates), state

  return optax.GradientTransformationExtraArgs(init, update)


def make_optimizer(train: ml_collections.ConfigDict, steps_per_epoch: int,
                   total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(clip by global norm ->) optimizer with the schedule, and the schedule itself.

  'ntasgd' is SGD whose whole chain is wrapped by ntasgd.averaged (the loop
  switches the averaging on; see rnnlm_jax/train/ntasgd.py).
  """
  schedule = make_schedule(train, steps_per_epoch, total_steps)
  if train.optimizer in ('sgd', 'ntasgd'):
    opt = optax.sgd(schedule)
  elif train.optimizer == 'momentum':
    opt = optax.sgd(schedule, momentum=train.momentum)
  elif train.optimizer == 'adam':
    opt = optax.adam(schedule)
  elif train.optimizer == 'adamw':
    opt = optax.adamw(schedule, weight_decay=train.weight_decay)
  else:
    raise ValueError(
        f'train.optimizer={train.optimizer!r} is not one of {OPTIMIZERS}')
  parts = []
  if train.clip_norm > 0:
    parts.append(optax.clip_by_global_norm(train.clip_norm))
  if train.weight_decay > 0 and train.optimizer != 'adamw':
    # L2 on the gradient (coupled decay), as SGD-based recipes (AWD-LSTM) use.
    parts.append(optax.add_decayed_weights(train.weight_decay))
  parts.append(opt)
  if train.variable_bptt:
    parts.append(scale_by_lr_factor())
  tx = optax.chain(*parts)
  if train.optimizer == 'ntasgd':
    tx = ntasgd.averaged(tx)
  return tx, schedule
