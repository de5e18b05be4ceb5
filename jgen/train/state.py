"""The train state every family returns from `init` and threads through `train_step`."""

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
  """A pytree the loop can jit, shard, donate and checkpoint.

  `params` and `opt_state` are whatever the family needs (one network's
  `nnx.State`, or a dict of generator and discriminator states); `extra` holds
  state that is not trained by gradients: batch statistics, an EMA of the
  parameters, a replay buffer. Every leaf is an array.
  """

  step: jax.Array
  params: Any
  opt_state: Any
  extra: Any = flax.struct.field(default_factory=dict)


def split_module(module):
  """Splits an NNX module into (graphdef, params, rest) with plain-array states.

  Plain arrays (not NNX Variables) keep the states free of trace-level identity:
  `nnx.merge` inside a jitted or differentiated function then builds fresh
  Variables, which the module may update (batch statistics) at that level.
  """
  from flax import nnx

  graphdef, params, rest = nnx.split(module, nnx.Param, ...)
  return graphdef, nnx.as_pure(params), nnx.as_pure(rest)
