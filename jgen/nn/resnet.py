"""Residual conv encoder / decoder for images (the VAE family's stronger architecture).

Each level is `blocks` residual blocks at one width, then a change of resolution:
the encoder halves the side with a stride-2 conv, the decoder doubles it with a
nearest-neighbour upsampling followed by a 3x3 conv (cheaper than a transposed
convolution on CPU, and free of its checkerboard artefacts). An image side must
be divisible by 2 ** len(channels): 28 -> 14 -> 7.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.nn.conv import Conv
from jgen.nn.convnets import _check_side


class ResBlock(nnx.Module):
  """x + conv(act(conv(act(x)))): pre-activation, same width, SiLU."""

  def __init__(self, channels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.conv1 = Conv(channels, channels, (3, 3), padding="SAME", dtype=dtype, rngs=rngs)
    # The residual branch starts near zero, so a deep stack starts near the identity.
    self.conv2 = Conv(channels, channels, (3, 3), padding="SAME", dtype=dtype, rngs=rngs,
                          kernel_init=nnx.initializers.variance_scaling(0.1, "fan_in", "truncated_normal"))

  def __call__(self, x):
    return x + self.conv2(nnx.silu(self.conv1(nnx.silu(x))))


class ResEncoder(nnx.Module):
  """[B, H, W, C] (+ one-hot label [B, num_classes] as extra input planes) -> [B, out_dim]."""

  def __init__(self, image_shape: Sequence[int], channels: Sequence[int], out_dim: int, *, blocks: int = 1,
               num_classes: int = 0, dtype=jnp.float32, rngs: nnx.Rngs):
    h, w, c = image_shape
    side_h, side_w = _check_side(h, len(channels)), _check_side(w, len(channels))
    self.num_classes = num_classes
    self.stem = Conv(c + num_classes, channels[0], (3, 3), padding="SAME", dtype=dtype, rngs=rngs)
    self.levels = nnx.List([nnx.List([ResBlock(ch, dtype=dtype, rngs=rngs) for _ in range(blocks)])
                            for ch in channels])
    outs = [*channels[1:], channels[-1]]
    self.downs = nnx.List([Conv(i, o, (3, 3), strides=2, padding="SAME", dtype=dtype, rngs=rngs)
                           for i, o in zip(channels, outs)])
    self.head = nnx.Linear(side_h * side_w * channels[-1], out_dim, dtype=dtype, rngs=rngs)

  def __call__(self, x, label_one_hot=None):
    if self.num_classes:
      planes = jnp.broadcast_to(label_one_hot[:, None, None, :], x.shape[:3] + (self.num_classes,))
      x = jnp.concatenate([x, planes.astype(x.dtype)], axis=-1)
    x = self.stem(x)
    for blocks, down in zip(self.levels, self.downs):
      for block in blocks:
        x = block(x)
      x = down(nnx.silu(x))
    return self.head(nnx.silu(x).reshape(x.shape[0], -1))


class ResDecoder(nnx.Module):
  """[B, in_dim] -> [B, H, W, out_channels] (unnormalised outputs: logits or distribution parameters)."""

  def __init__(self, in_dim: int, image_shape: Sequence[int], channels: Sequence[int], out_channels: int, *,
               blocks: int = 1, dtype=jnp.float32, rngs: nnx.Rngs):
    h, w, _ = image_shape
    self.base = (_check_side(h, len(channels)), _check_side(w, len(channels)), channels[0])
    self.dense = nnx.Linear(in_dim, self.base[0] * self.base[1] * channels[0], dtype=dtype, rngs=rngs)
    outs = [*channels[1:], channels[-1]]
    self.levels = nnx.List([nnx.List([ResBlock(ch, dtype=dtype, rngs=rngs) for _ in range(blocks)])
                            for ch in channels])
    self.ups = nnx.List([Conv(i, o, (3, 3), padding="SAME", dtype=dtype, rngs=rngs)
                         for i, o in zip(channels, outs)])
    self.out = Conv(channels[-1], out_channels, (3, 3), padding="SAME", dtype=dtype, rngs=rngs)

  def __call__(self, z):
    x = self.dense(z).reshape(z.shape[0], *self.base)
    for blocks, up in zip(self.levels, self.ups):
      for block in blocks:
        x = block(x)
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest-neighbour x2
      x = up(nnx.silu(x))
    return self.out(nnx.silu(x))


def one_hot(labels, num_classes: int):
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
