"""Small strided conv stacks shared by VAEs (encoder/decoder) and GANs (discriminator/generator).

Each stride-2 layer halves (or doubles) the spatial size, so an image side must
be divisible by 2 ** len(channels): 28 -> 14 -> 7 and 8 -> 4 -> 2 both work.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.nn.conv import Conv
from jgen.nn.upsample import SubpixelConvTranspose


def _check_side(side: int, depth: int) -> int:
  if side % (2 ** depth):
    raise ValueError(f"image side {side} is not divisible by 2**{depth}; use fewer conv layers")
  return side // (2 ** depth)


class ConvEncoder(nnx.Module):
  """[B, H, W, C] -> [B, out_dim]: stride-2 convs, then a dense head."""

  def __init__(self, image_shape: Sequence[int], channels: Sequence[int], out_dim: int, *, rngs: nnx.Rngs,
               activation=nnx.relu, dtype=jnp.float32):
    h, w, c = image_shape
    _check_side(h, len(channels)), _check_side(w, len(channels))
    ins = [c, *channels[:-1]]
    self.convs = nnx.List([Conv(i, o, (4, 4), strides=2, padding="SAME", dtype=dtype, rngs=rngs)
                           for i, o in zip(ins, channels)])
    flat = (h // 2 ** len(channels)) * (w // 2 ** len(channels)) * channels[-1]
    self.head = nnx.Linear(flat, out_dim, dtype=dtype, rngs=rngs)
    self.activation = activation

  def __call__(self, x):
    for conv in self.convs:
      x = self.activation(conv(x))
    return self.head(x.reshape(x.shape[0], -1))


class ConvDecoder(nnx.Module):
  """[B, in_dim] -> [B, H, W, C] (unnormalized): dense to a small map, then stride-2 transposed convs.

  `batch_norm=True` puts batch normalization after each hidden layer (DCGAN's generator).
  """

  def __init__(self, in_dim: int, image_shape: Sequence[int], channels: Sequence[int], *, rngs: nnx.Rngs,
               batch_norm: bool = False, bn_momentum: float = 0.9, dtype=jnp.float32):
    h, w, c = image_shape
    self.base = (_check_side(h, len(channels)), _check_side(w, len(channels)), channels[0])
    self.dense = nnx.Linear(in_dim, self.base[0] * self.base[1] * channels[0], dtype=dtype, rngs=rngs)
    outs = [*channels[1:], c]
    # nnx.ConvTranspose((4, 4), strides=2, "SAME") with the same parameters, lowered faster (jgen.nn.upsample).
    self.deconvs = nnx.List([SubpixelConvTranspose(i, o, dtype=dtype, rngs=rngs) for i, o in zip(channels, outs)])
    norm = ((lambda n: nnx.BatchNorm(n, momentum=bn_momentum, dtype=dtype, rngs=rngs)) if batch_norm
            else (lambda n: None))
    self.norms = nnx.List([norm(channels[0])] + [norm(o) for o in outs[:-1]])

  def __call__(self, z):
    x = self.dense(z).reshape(z.shape[0], *self.base)
    x = self._act(x, self.norms[0])
    for i, deconv in enumerate(self.deconvs):
      x = deconv(x)
      if i < len(self.deconvs) - 1:
        x = self._act(x, self.norms[i + 1])
    return x

  @staticmethod
  def _act(x, norm):
    return nnx.relu(norm(x) if norm is not None else x)
