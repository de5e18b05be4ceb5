"""The networks inside coupling layers: they read the unchanged part and give the changed part's shift and scale.

Their last layer starts at zero, so at initialisation every coupling is the identity (or, with the sigmoid
scale, a fixed contraction that ActNorm absorbs): a deep flow starts well conditioned. They need not be
invertible themselves.
"""

import jax
from flax import nnx

_zeros = nnx.initializers.zeros


class ConvNet(nnx.Module):
  """Images: 3x3 conv -> `num_blocks` residual blocks (ReLU, 3x3, ReLU, 1x1) -> ReLU -> zero-initialised 3x3."""

  def __init__(self, in_channels: int, out_channels: int, features: int, num_blocks: int, *, rngs: nnx.Rngs):
    self.first = nnx.Conv(in_channels, features, (3, 3), rngs=rngs)
    self.blocks = nnx.List([nnx.List([nnx.Conv(features, features, (3, 3), rngs=rngs),
                                      nnx.Conv(features, features, (1, 1), rngs=rngs)]) for _ in range(num_blocks)])
    self.last = nnx.Conv(features, out_channels, (3, 3), kernel_init=_zeros, bias_init=_zeros, rngs=rngs)

  def __call__(self, x):
    h = self.first(x)
    for conv, mix in self.blocks:
      h = h + mix(jax.nn.relu(conv(jax.nn.relu(h))))
    return self.last(jax.nn.relu(h))


class MLP(nnx.Module):
  """Vectors: `num_blocks` hidden layers of `features` units with SiLU (smooth, so the density is smooth),
  then a zero-initialised linear layer."""

  def __init__(self, in_dim: int, out_dim: int, features: int, num_blocks: int, *, rngs: nnx.Rngs):
    self.layers = nnx.List([nnx.Linear(in_dim if i == 0 else features, features, rngs=rngs)
                            for i in range(num_blocks)])
    self.last = nnx.Linear(features, out_dim, kernel_init=_zeros, bias_init=_zeros, rngs=rngs)

  def __call__(self, x):
    for layer in self.layers:
      x = jax.nn.silu(layer(x))
    return self.last(x)
