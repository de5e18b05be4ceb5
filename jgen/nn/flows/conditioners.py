"""The networks inside coupling layers: they read the unchanged part and give the changed part's shift and scale.

Their last layer starts at zero, so at initialisation every coupling is the identity (or, with the sigmoid
scale, a fixed contraction that ActNorm absorbs): a deep flow starts well conditioned. They need not be
invertible themselves.

They are the only part of a flow that may compute in a narrower `dtype` (bfloat16, jgen.nn.precision): their
outputs come back in the dtype of their input (float32; float64 in the exactness tests), and the kept part
they read passes unchanged, so the inverse recomputes the same outputs and each coupling stays exactly
invertible. `dtype=None` computes in the inputs' and weights' own dtype.
"""

import jax
from flax import nnx

from jgen.nn.conv import Conv

_zeros = nnx.initializers.zeros


class ConvNet(nnx.Module):
  """Images: 3x3 conv -> `num_blocks` residual blocks (ReLU, 3x3, ReLU, 1x1) -> ReLU -> zero-initialised 3x3."""

  def __init__(self, in_channels: int, out_channels: int, features: int, num_blocks: int, *, dtype=None,
               rngs: nnx.Rngs):
    kw = dict(dtype=dtype, rngs=rngs)
    self.dtype = dtype
    self.first = Conv(in_channels, features, (3, 3), **kw)
    self.blocks = nnx.List([nnx.List([Conv(features, features, (3, 3), **kw),
                                      Conv(features, features, (1, 1), **kw)]) for _ in range(num_blocks)])
    self.last = Conv(features, out_channels, (3, 3), kernel_init=_zeros, bias_init=_zeros, **kw)

  def __call__(self, x):
    h = self.first(x if self.dtype is None else x.astype(self.dtype))
    for conv, mix in self.blocks:
      h = h + mix(jax.nn.relu(conv(jax.nn.relu(h))))
    return self.last(jax.nn.relu(h)).astype(x.dtype)


class MLP(nnx.Module):
  """Vectors: `num_blocks` hidden layers of `features` units with SiLU (smooth, so the density is smooth),
  then a zero-initialised linear layer."""

  def __init__(self, in_dim: int, out_dim: int, features: int, num_blocks: int, *, dtype=None,
               rngs: nnx.Rngs):
    self.dtype = dtype
    self.layers = nnx.List([nnx.Linear(in_dim if i == 0 else features, features, dtype=dtype, rngs=rngs)
                            for i in range(num_blocks)])
    self.last = nnx.Linear(features, out_dim, kernel_init=_zeros, bias_init=_zeros, dtype=dtype, rngs=rngs)

  def __call__(self, x):
    h = x if self.dtype is None else x.astype(self.dtype)
    for layer in self.layers:
      h = jax.nn.silu(layer(h))
    return self.last(h).astype(x.dtype)
