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
