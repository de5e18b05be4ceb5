"""ActNorm (Glow): a per-channel affine map z = x * exp(log_scale) + bias, initialised from data.

`initialize(x)` sets the parameters so that the init batch leaves with zero mean and unit variance per
channel, then applies them; the family calls it inside `init(rng, batch)`, so it traces under jit, sees
the same global batch on any number of devices, and is never called again (a resumed run restores the
trained values). A stand-in for batch normalisation whose inverse does not depend on a batch.
"""

import jax.numpy as jnp
from flax import nnx

from jgen.nn.flows.base import Bijector

EPS = 1e-6  # keeps a constant channel (a border that is always background) finite


class ActNorm(Bijector):

  def __init__(self, channels: int):
    self.log_scale = nnx.Param(jnp.zeros((channels,)))
    self.bias = nnx.Param(jnp.zeros((channels,)))

  def _logdet(self, x):
    positions = x[0, ..., 0].size  # H * W for images, 1 for vectors: each position has the same Jacobian
    return jnp.full(x.shape[:1], positions * jnp.sum(self.log_scale[...]), x.dtype)

  def forward(self, x, ctx=None):
    return x * jnp.exp(self.log_scale[...]) + self.bias[...], self._logdet(x)

  def inverse(self, z, ctx=None):
    return (z - self.bias[...]) * jnp.exp(-self.log_scale[...])

  def initialize(self, x, ctx=None):
    axes = tuple(range(x.ndim - 1))
    log_scale = -jnp.log(jnp.std(x, axis=axes) + EPS)
    self.log_scale[...] = log_scale.astype(self.log_scale[...].dtype)
    self.bias[...] = (-jnp.mean(x, axis=axes) * jnp.exp(log_scale)).astype(self.bias[...].dtype)
    return self.forward(x, ctx)
