"""Coupling layers (NICE, RealNVP, Glow): one part of x passes unchanged and sets an elementwise affine map of
the other part, so the Jacobian is triangular and its log-determinant is the sum of the log-scales.

Masks: "checkerboard" (images: pixels where row + column + parity is even stay), "channel" (the last axis
split in two: the channels of an image, the coordinates of a vector; parity picks which half stays).
Kinds: "affine" (z = x * s + t) or "additive" (z = x + t, volume preserving: NICE). Scales, kept stable:
"sigmoid" (s = sigmoid(h + 2), in (0, 1): can only shrink, starts near 0.88; Glow) or "tanh"
(log s = a * tanh(h) with a learned per-channel a starting at 1: starts at s = 1; RealNVP).
`dtype` is the conditioner network's compute dtype (jgen.nn.precision; None: the inputs'); its outputs, the
affine map and the log-determinant are in the flow's own dtype (float32).
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jgen.nn.flows.base import Bijector, no_logdet, sum_except_batch
from jgen.nn.flows.conditioners import MLP, ConvNet

MASKS = ("checkerboard", "channel")
KINDS = ("affine", "additive")
SCALES = ("sigmoid", "tanh")


def checkerboard(height: int, width: int, parity: int) -> np.ndarray:
  """[H, W, 1] float32: 1 where the pixel passes unchanged (row + column + parity even)."""
  rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
  return ((rows + cols + parity) % 2 == 0).astype(np.float32)[..., None]


class Coupling(Bijector):
  """shape: one example's shape, (H, W, C) or (D,); ctx_channels: channels of a conditioning array the
  network also reads (the variational dequantizer's pixels)."""

  def __init__(self, shape, mask: str, parity: int, *, kind: str = "affine", scale: str = "sigmoid",
               features: int = 64, num_blocks: int = 1, ctx_channels: int = 0, dtype=None, rngs: nnx.Rngs):
    if mask not in MASKS or kind not in KINDS or scale not in SCALES:
      raise ValueError(f"coupling mask/kind/scale {mask}/{kind}/{scale}: use {MASKS}, {KINDS}, {SCALES}")
    shape = tuple(shape)
    self.mask, self.parity, self.kind, self.scale = mask, parity % 2, kind, scale
    channels = shape[-1]
    if mask == "checkerboard":
      if len(shape) != 3:
        raise ValueError("a checkerboard mask needs images [H, W, C]")
      self.hw = shape[:2]
      n_in, n_out = channels + 1 + ctx_channels, channels  # the network also sees the mask
    else:
      if channels < 2:
        raise ValueError(f"a channel mask splits the last axis in two; it has {channels}")
      self.split = channels // 2
      kept = self.split if self.parity == 0 else channels - self.split
      n_in, n_out = kept + ctx_channels, channels - kept
    width = 2 * n_out if kind == "affine" else n_out
    net = ConvNet if len(shape) == 3 else MLP
    self.net = net(n_in, width, features, num_blocks, dtype=dtype, rngs=rngs)
    self.tanh_scale = nnx.Param(jnp.ones((n_out,))) if kind == "affine" and scale == "tanh" else None

  def _log_scale_shift(self, out):
    if self.kind == "additive":
      return None, out
    shift, h = jnp.split(out, 2, axis=-1)
    if self.scale == "sigmoid":  # sigmoid(h + 2): bounded, and log-sigmoid is accurate in both tails
      return jax.nn.log_sigmoid(h + 2.0), shift
    return self.tanh_scale[...] * jnp.tanh(h), shift

  def _net(self, kept, ctx):
    return self.net(kept if ctx is None else jnp.concatenate([kept, ctx], -1))

  # ---- checkerboard: masks keep the image's shape --------------------------------------------------------
  def _board(self, x, ctx):
    """(log-scale, shift) of the changed pixels, zero on the kept ones."""
    b = jnp.asarray(checkerboard(*self.hw, self.parity), x.dtype)
    kept = jnp.concatenate([x * b, jnp.broadcast_to(b, x.shape[:-1] + (1,))], -1)
    log_s, shift = self._log_scale_shift(self._net(kept, ctx))
    return (None if log_s is None else log_s * (1 - b)), shift * (1 - b)

  # ---- channel: the kept part and the changed part --------------------------------------------------------
  def _parts(self, x):
    first, second = x[..., :self.split], x[..., self.split:]
    return (first, second) if self.parity == 0 else (second, first)

  def _join(self, kept, changed):
    return jnp.concatenate([kept, changed] if self.parity == 0 else [changed, kept], -1)

  def forward(self, x, ctx=None):
    if self.mask == "checkerboard":
      log_s, shift = self._board(x, ctx)
      if log_s is None:
        return x + shift, no_logdet(x)
      return x * jnp.exp(log_s) + shift, sum_except_batch(log_s)
    kept, changed = self._parts(x)
    log_s, shift = self._log_scale_shift(self._net(kept, ctx))
    if log_s is None:
      return self._join(kept, changed + shift), no_logdet(x)
    return self._join(kept, changed * jnp.exp(log_s) + shift), sum_except_batch(log_s)

  def inverse(self, z, ctx=None):
    if self.mask == "checkerboard":  # the network reads z * b = x * b: the kept pixels are unchanged
      log_s, shift = self._board(z, ctx)
      return z - shift if log_s is None else (z - shift) * jnp.exp(-log_s)
    kept, changed = self._parts(z)
    log_s, shift = self._log_scale_shift(self._net(kept, ctx))
    return self._join(kept, changed - shift if log_s is None else (changed - shift) * jnp.exp(-log_s))
