"""The GAN networks: a DCGAN-style generator and a convolutional discriminator (critic), both optionally
class-conditional.

Generator: z (and a label embedding, concatenated) -> dense -> [side / 2^L, side / 2^L, C_0] -> L upsampling
layers, batch norm + ReLU after every hidden layer (no bias before a batch norm), tanh at the end. Upsampling
is a stride-2 transposed convolution (`"transpose"`, DCGAN) or nearest-neighbour resize + 3x3 convolution
(`"nearest"`, which avoids the transposed convolution's checkerboard artefacts).

Discriminator: L stride-2 4x4 convolutions with leaky ReLU, optionally layer-normalised (`norm="layer"`,
the WGAN-GP critic: no batch norm, so every example's output depends on that example alone, as the gradient
penalty assumes) and spectrally normalised (Miyato et al. 2018), then a linear head on the flattened features.
A conditional discriminator adds the projection term <embed(y), phi(x)> (Miyato & Koyama 2018).

Both compute in `dtype` (bfloat16 for mixed precision; parameters stay float32) and return float32, so the
losses and the gradient penalty are taken in float32.
"""

from typing import Sequence

import jax.numpy as jnp
from flax import nnx

from jgen.nn.conv import Conv
from jgen.nn.precision import to_float32
from jgen.nn.spectral_norm import maybe_normed
from jgen.nn.upsample import SubpixelConvTranspose

UPSAMPLINGS = ("transpose", "nearest")
DISC_NORMS = ("none", "layer")


def base_side(side: int, depth: int) -> int:
  if side % (2 ** depth):
    raise ValueError(f"image side {side} is not divisible by 2**{depth}; use fewer channel levels")
  return side // (2 ** depth)


class Upsample(nnx.Module):
  """Doubles the spatial size: a stride-2 transposed convolution, or nearest resize + 3x3 convolution."""

  def __init__(self, c_in: int, c_out: int, mode: str, use_bias: bool, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.mode = mode
    if mode == "transpose":
      # nnx.ConvTranspose((4, 4), strides=2, "SAME"): same parameters and function, faster lowering.
      self.conv = SubpixelConvTranspose(c_in, c_out, use_bias=use_bias, dtype=dtype, rngs=rngs)
    else:
      self.conv = Conv(c_in, c_out, (3, 3), padding="SAME", use_bias=use_bias, dtype=dtype, rngs=rngs)

  def __call__(self, x):
    if self.mode == "nearest":
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return self.conv(x)


class Generator(nnx.Module):
  """z [B, latent_dim] (+ label [B]) -> images [B, H, W, C] in [-1, 1]."""

  def __init__(self, latent_dim: int, image_shape: Sequence[int], channels: Sequence[int], *, upsample: str,
               num_classes: int = 0, label_dim: int = 0, dtype=jnp.float32, rngs: nnx.Rngs):
    h, w, c = image_shape
    self.dtype = dtype
    self.base = (base_side(h, len(channels)), base_side(w, len(channels)), channels[0])
    self.embed = nnx.Embed(num_classes, label_dim, rngs=rngs) if num_classes else None
    in_dim = latent_dim + (label_dim if num_classes else 0)
    self.dense = nnx.Linear(in_dim, self.base[0] * self.base[1] * channels[0], use_bias=False, dtype=dtype,
                            rngs=rngs)
    self.norm0 = nnx.BatchNorm(channels[0], momentum=0.9, dtype=dtype, rngs=rngs)
    outs = [*channels[1:], c]
    last = len(outs) - 1
    self.ups = nnx.List([Upsample(i, o, upsample, use_bias=(k == last), dtype=dtype, rngs=rngs)
                         for k, (i, o) in enumerate(zip(channels, outs))])
    self.norms = nnx.List([nnx.BatchNorm(o, momentum=0.9, dtype=dtype, rngs=rngs) for o in outs[:-1]])

  def __call__(self, z, label=None):
    if self.embed is not None:
      z = jnp.concatenate([z, self.embed(label)], axis=-1)
    x = self.dense(z.astype(self.dtype)).reshape(z.shape[0], *self.base)
    x = nnx.relu(self.norm0(x))
    for k, up in enumerate(self.ups):
      x = up(x)
      if k < len(self.norms):
        x = nnx.relu(self.norms[k](x))
    return to_float32(jnp.tanh(x))


class Discriminator(nnx.Module):
  """images [B, H, W, C] in [-1, 1] (+ label [B]) -> logits / critic values [B]."""

  def __init__(self, image_shape: Sequence[int], channels: Sequence[int], *, norm: str = "none",
               spectral_norm: bool = False, num_classes: int = 0, dtype=jnp.float32, rngs: nnx.Rngs):
    h, w, c = image_shape
    self.dtype = dtype
    bh, bw = base_side(h, len(channels)), base_side(w, len(channels))
    ins = [c, *channels[:-1]]
    self.convs = nnx.List([maybe_normed(Conv(i, o, (4, 4), strides=2, padding="SAME", dtype=dtype, rngs=rngs),
                                        spectral_norm, rngs) for i, o in zip(ins, channels)])
    # Layer norm over each example's whole feature map (one group), not on the first layer (as in DCGAN).
    self.norms = nnx.List([nnx.GroupNorm(o, num_groups=1, dtype=dtype, rngs=rngs) if norm == "layer" and k > 0
                           else None
                           for k, o in enumerate(channels)])
    self.feature_dim = bh * bw * channels[-1]
    self.head = maybe_normed(nnx.Linear(self.feature_dim, 1, dtype=dtype, rngs=rngs), spectral_norm, rngs)
    self.embed = (nnx.Embed(num_classes, self.feature_dim, embedding_init=nnx.initializers.normal(0.02), rngs=rngs)
                  if num_classes else None)

  def __call__(self, x, label=None):
    x = x.astype(self.dtype)
    for conv, norm in zip(self.convs, self.norms):
      x = conv(x)
      x = nnx.leaky_relu(norm(x) if norm is not None else x, 0.2)
    features = to_float32(x.reshape(x.shape[0], -1))
    out = to_float32(self.head(x.reshape(x.shape[0], -1)))[:, 0]
    if self.embed is not None:  # projection discriminator: + <embed(y), phi(x)>, in float32
      out = out + jnp.sum(self.embed(label) * features, axis=-1)
    return out
