"""The PyTorch twins of benchmarks/vs_pytorch.py are jgen's networks: the same parameter count at the benchmarked
configs, and one train step on the smoke configs gives a finite loss of the order of jgen's initial loss
(the twins mirror flax's initialisers; random draws, dropout and data noise differ, hence 20%)."""

import math
import pathlib
import sys

import numpy as np
import pytest

# torch is the benchmark-only `[bench]` extra (`pip install -e .[bench]`); jgen, `make test` and CI do not install it.
torch = pytest.importorskip("torch", reason="PyTorch (the [bench] extra) is not installed")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from jgen import config as config_lib  # noqa: E402
from jgen import registry  # noqa: E402
from jgen.data import spec as spec_lib  # noqa: E402
from jgen.train.state import split_network  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
import torch_twins  # noqa: E402
import vs_pytorch  # noqa: E402

NAMES = list(vs_pytorch.MODELS)


def _load(spec: str):
  config = config_lib.load(vs_pytorch.config_path(spec))
  data = spec_lib.from_dataset(config.data)
  return config, data, registry.build(config, data)


@pytest.mark.parametrize("name", NAMES)
def test_twin_has_the_parameter_count_of_jgen(name):
  config, data, family = _load(vs_pytorch.MODELS[name])
  nets = nnx.eval_shape(lambda: family.make_networks(nnx.Rngs(0)))
  expected = sum(x.size for net in nets.values() for x in jax.tree.leaves(split_network(net)[1]))
  twin = torch_twins.build(name, config.to_dict(), data.to_json())
  assert twin.num_params() == expected


@pytest.mark.parametrize("name", NAMES)
def test_twin_step_loss_is_of_the_order_of_jgen_initial_loss(name):
  config, data, family = _load(vs_pytorch.MODELS[name].rsplit(":", 1)[0] + ":smoke")
  batch = vs_pytorch.random_batch(data.to_json(), config.data.batch_size)
  jbatch = spec_lib.to_model_input({k: jnp.asarray(v) for k, v in batch.items()})
  # One jit of init and step; rbg keys, whose initialisers XLA:CPU compiles several times faster than threefry's.
  first_loss = jax.jit(lambda key, b: family.train_step(family.init(key, b), b, key)[1]["loss"])
  expected = float(first_loss(jax.random.key(0, impl="unsafe_rbg"), jbatch))
  torch.manual_seed(0)
  tbatch = vs_pytorch.to_torch(batch)
  twin = torch_twins.build(name, config.to_dict(), data.to_json(), init_batch=tbatch)
  loss = float(twin.step(tbatch))
  assert math.isfinite(loss) and np.isfinite(expected)
  assert abs(loss / expected - 1.0) < 0.2, (loss, expected)
  assert math.isfinite(float(twin.step(tbatch)))  # the updated weights train on
