"""A new cell is one registry entry: registered here, it trains end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from rnnlm_jax.models import cells
from rnnlm_jax.training import inference, trainer
from tests.test_train_loop import tiny_config


def _min_gated_update(x_gates, h_gates, carry, extra):
  """A toy two-gate cell: h' = z * h + (1 - z) * tanh(x_n + s * h_n)."""
  (h,) = carry
  x_z, x_n = jnp.split(x_gates, 2, axis=-1)
  h_z, h_n = jnp.split(h_gates, 2, axis=-1)
  z = jax.nn.sigmoid(x_z + h_z)
  return (z * h + (1.0 - z) * jnp.tanh(x_n + extra['scale_hn'] * h_n),)


class _CumulativeMeanLayer(cells.LayerSettings):
  """A toy non-gated layer: h_t = running mean of Dense(x) (carry: sum, count)."""
  decay: float = 1.0

  @nn.compact
  def __call__(self, inputs, carry, *, train=False):
    total, count = carry
    x = nn.Dense(self.hidden_size)(inputs)  # [B, T, H]
    steps = jnp.arange(1, inputs.shape[1] + 1, dtype=jnp.float32)
    sums = total[:, None] + jnp.cumsum(x, axis=1) * self.decay
    counts = count[:, None] + steps[None, :, None]
    return sums / counts, (sums[:, -1], counts[:, -1])


@pytest.fixture
def registered():
  names = []

  def register(name, spec):
    cells.CELLS.register(name, spec)
    names.append(name)

  yield register
  for name in names:
    cells.CELLS.unregister(name)


def test_a_registered_gated_cell_trains(registered, tmp_path):
  registered('toy_gated', cells.CellSpec(_min_gated_update, num_gates=2,
                                         extra_params=('scale_hn',)))
  config = tiny_config(num_steps=40)
  config.model.cell = 'toy_gated'
  results = trainer.train_and_evaluate(config, str(tmp_path))
  _, state, _ = inference.load_trained(config, str(tmp_path))
  layer = state.params['layer_0']
  assert layer['kernel_hh'].shape == (16, 32) and layer['scale_hn'].shape == (16,)
  assert results['valid_ppl'] < 0.8 * 12  # learns the chain (uniform: 12)


def test_a_registered_layer_cell_trains_with_its_options(registered, tmp_path):
  registered('toy_mean', cells.CellSpec(
      layer=_CumulativeMeanLayer,
      initial_carry=lambda b, h: (jnp.zeros((b, h)), jnp.zeros((b, 1)))))
  config = tiny_config(num_steps=20)
  config.model.cell = 'toy_mean'
  with config.unlocked():
    config.model.toy_mean = {'decay': 0.5}  # the cell's own nested settings
  results = trainer.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(results['valid_loss'])
  carry = cells.initial_carry('toy_mean', 3, 16)
  assert [c.shape for c in carry] == [(3, 16), (3, 1)]


def test_unknown_cell_suggests_the_closest_name():
  config = tiny_config()
  config.model.cell = 'lstn'
  with pytest.raises(ValueError, match=r"model.cell='lstn' .*did you mean 'lstm'"):
    from rnnlm_jax import models
    models.make_model(config.model, 12)


def test_config_sub_dicts_of_layer_cells_are_the_layers_own_defaults():
  import dataclasses  # pylint: disable=import-outside-toplevel
  from rnnlm_jax import configs  # pylint: disable=import-outside-toplevel
  model = configs.base_config().model
  for name, spec in cells.CELLS.items():
    if spec.layer is None or name not in model:
      continue
    defaults = {f.name: f.default for f in dataclasses.fields(spec.layer)}
    for key, value in model[name].items():
      assert key in defaults, (name, key)
      assert value == pytest.approx(defaults[key]), (name, key)


def test_unknown_cell_setting_is_one_line():
  config = tiny_config()
  config.model.cell = 'mingru'
  with config.unlocked():
    config.model.mingru.scann = 'sequential'
  from rnnlm_jax import models  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match=r"model.mingru.scann='sequential' is not a setting"):
    models.make_model(config.model, 12)
