"""Energy networks E(x) -> [B]: a small strided CNN for images, an MLP for points; SiLU (Swish) throughout.

Smooth activations matter here: Langevin dynamics follows grad_x E, and a ReLU
network's input gradient is piecewise constant. Spectral normalisation
(optional) bounds each layer's Lipschitz constant, which keeps the energy
landscape smooth (IGEBM). No batch norm: an example's energy must not depend on
the rest of its batch, or Langevin's sum-of-energies gradient would mix them.
`dtype` is the compute dtype (jgen.nn.precision); the energies come out float32.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.nn.conv import Conv
from jgen.nn.precision import to_float32
from jgen.nn.spectral_norm import maybe_normed


class ConvEnergy(nnx.Module):
  """[B, H, W, C] -> [B]: stride-2 convs (5x5 first, then 3x3), a dense SiLU layer, a linear output."""

  def __init__(self, image_shape, channels, hidden: int, spectral_norm: bool, *, dtype=jnp.float32,
               rngs: nnx.Rngs):
    h, w, c = image_shape
    ins = [c, *channels[:-1]]
    self.dtype = dtype
    self.convs = nnx.List([
        maybe_normed(Conv(i, o, (5, 5) if k == 0 else (3, 3), strides=2, padding="SAME", dtype=dtype,
                              rngs=rngs), spectral_norm, rngs) for k, (i, o) in enumerate(zip(ins, channels))])
    for _ in channels:  # SAME padding with stride 2: ceil(side / 2)
      h, w = -(-h // 2), -(-w // 2)
    self.hidden = maybe_normed(nnx.Linear(h * w * channels[-1], hidden, dtype=dtype, rngs=rngs), spectral_norm,
                               rngs)
    self.out = maybe_normed(nnx.Linear(hidden, 1, dtype=dtype, rngs=rngs), spectral_norm, rngs)

  def __call__(self, x):
    x = x.astype(self.dtype)
    for conv in self.convs:
      x = jax.nn.silu(conv(x))
    return to_float32(self.out(jax.nn.silu(self.hidden(x.reshape(x.shape[0], -1))))[:, 0])


class MLPEnergy(nnx.Module):
  """[B, D] -> [B]: `depth` SiLU layers of width `hidden`, a linear output."""

  def __init__(self, dim: int, hidden: int, depth: int, spectral_norm: bool, *, dtype=jnp.float32,
               rngs: nnx.Rngs):
    sizes = [dim] + [hidden] * depth
    self.dtype = dtype
    self.layers = nnx.List([maybe_normed(nnx.Linear(i, o, dtype=dtype, rngs=rngs), spectral_norm, rngs)
                            for i, o in zip(sizes[:-1], sizes[1:])])
    self.out = maybe_normed(nnx.Linear(hidden, 1, dtype=dtype, rngs=rngs), spectral_norm, rngs)

  def __call__(self, x):
    x = x.astype(self.dtype)
    for layer in self.layers:
      x = jax.nn.silu(layer(x))
    return to_float32(self.out(x)[:, 0])
