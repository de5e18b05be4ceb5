"""Causal convolutions for autoregressive image models (raster order, channels within a pixel in order).

`MaskedConv2d` zeroes the kernel taps that would let an output see the pixel it predicts or later ones:
every row above, the columns left of centre in the centre row, and at the centre itself the channel groups
before the output's own (mask "A", the first layer) or up to and including it (mask "B", later layers).
Features are split into one contiguous group per image channel, so an image with C > 1 channels is
modelled channel by channel (R, then G given R, then B given R and G).

`GatedBlock` is the gated PixelCNN layer (van den Oord et al. 2016): a vertical stack that sees the rows
above (and feeds the horizontal stack only after a one-row shift), and a horizontal stack that sees the
pixels to the left in the row, so the receptive field has no blind spot. A class label adds a learned
bias to both stacks' gates.

`dtype` is the compute dtype (jgen.nn.precision): kernels stay float32 parameters and are cast to it.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jgen.nn.bias import add_bias
from jgen.nn.conv import Conv
from jgen.nn.tap_conv import conv_by_taps


def _groups(num_features: int, channels: int) -> np.ndarray:
  """The image channel each feature belongs to (contiguous blocks)."""
  return np.arange(num_features) * channels // num_features


def causal_mask(kernel: tuple[int, int], in_features: int, out_features: int, channels: int, mask_type: str,
                ) -> np.ndarray:
  """The {0, 1} mask [kh, kw, in, out] of a masked convolution; the kernel centre is the predicted pixel."""
  if mask_type not in ("A", "B"):
    raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
  kh, kw = kernel
  cy, cx = kh // 2, kw // 2
  mask = np.zeros((kh, kw, in_features, out_features), np.float32)
  mask[:cy] = 1.0
  mask[cy, :cx] = 1.0
  g_in, g_out = _groups(in_features, channels), _groups(out_features, channels)
  see = g_in[:, None] < g_out[None, :] if mask_type == "A" else g_in[:, None] <= g_out[None, :]
  mask[cy, cx] = see.astype(np.float32)
  return mask


class MaskedConv2d(nnx.Module):
  """A 'SAME' convolution whose kernel is multiplied by a fixed causal mask."""

  def __init__(self, in_features: int, out_features: int, kernel: int, mask_type: str, channels: int, *,
               dtype=jnp.float32, rngs: nnx.Rngs):
    self.conv = Conv(in_features, out_features, (kernel, kernel), padding="SAME", dtype=dtype, rngs=rngs)
    self.shape = (kernel, in_features, out_features, channels, mask_type)  # the mask, made at trace time
    self.dtype = dtype

  def __call__(self, x):
    kernel, in_features, out_features, channels, mask_type = self.shape
    mask = causal_mask((kernel, kernel), in_features, out_features, channels, mask_type)
    # Only the taps the mask keeps are computed (5 of 9 in a 3x3 mask B); their weights are still masked
    # where the centre tap hides some channel groups.
    taps = [(i, j) for i in range(kernel) for j in range(kernel) if mask[i, j].any()]
    y = conv_by_taps(x.astype(self.dtype), (self.conv.kernel[...] * mask).astype(self.dtype), taps)
    return add_bias(y, self.conv.bias[...].astype(self.dtype))


def shift_down(x):
  """Moves every row one down (row 0 becomes zeros): what the vertical stack may pass to the horizontal one."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def _gate(h):
  a, b = jnp.split(h, 2, axis=-1)
  return jnp.tanh(a) * jax.nn.sigmoid(b)


class GatedBlock(nnx.Module):
  """One gated PixelCNN layer on (vertical, horizontal) feature maps of `features` channels (1 image channel).

  The vertical convolution covers the kernel's upper half and the centre row ([k//2 + 1, k] taps, padded so the
  output row r sees input rows <= r); its output reaches the horizontal stack shifted one row down. The
  horizontal convolution covers the centre row's left half, and the centre itself except in the first layer.
  """

  def __init__(self, in_features: int, features: int, kernel: int, first: bool, num_classes: int = 0, *,
               dtype=jnp.float32, rngs: nnx.Rngs):
    self.k, self.first = kernel, first
    half = kernel // 2
    conv = dict(dtype=dtype, rngs=rngs)
    self.vertical = Conv(in_features, 2 * features, (half + 1, kernel), padding="VALID", **conv)
    self.horizontal = Conv(in_features, 2 * features, (1, half + 1), padding="VALID", **conv)
    self.v_to_h = Conv(2 * features, 2 * features, (1, 1), **conv)
    self.h_out = Conv(features, features, (1, 1), **conv)
    self.label_bias = nnx.Embed(num_classes, 2 * features, dtype=dtype, rngs=rngs) if num_classes else None

  def __call__(self, v, h, label=None):
    half = self.k // 2
    # Vertical: rows r - half .. r, columns c - half .. c + half.
    v_pre = self.vertical(jnp.pad(v, ((0, 0), (half, 0), (half, half), (0, 0))))
    # Horizontal: columns c - half .. c (the first layer drops the centre by shifting one column right).
    h_in = jnp.pad(h, ((0, 0), (0, 0), (half, 0), (0, 0)))
    if self.first:
      h_in = jnp.pad(h_in, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]
    h_pre = self.horizontal(h_in) + self.v_to_h(shift_down(v_pre))
    if self.label_bias is not None and label is not None:
      bias = self.label_bias(label)[:, None, None, :]
      v_pre, h_pre = v_pre + bias, h_pre + bias
    v_new = _gate(v_pre)
    h_new = self.h_out(_gate(h_pre))
    return v_new, (h_new if self.first else h + h_new)
