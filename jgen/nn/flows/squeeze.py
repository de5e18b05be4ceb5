"""Squeeze (space to depth): [B, H, W, C] -> [B, H/2, W/2, 4C], each 2x2 patch stacked into channels.

A permutation of the values, so its log-determinant is 0; it trades resolution for channels so that channel
couplings and 1x1 convolutions can mix neighbouring pixels. `split_channels` / `join_channels` factor half the
channels out of a multiscale flow and put them back.
"""

import jax.numpy as jnp

from jgen.nn.flows.base import Bijector, no_logdet


def split_channels(x):
  """(kept, factored): the first and the second half of the last axis."""
  half = x.shape[-1] // 2
  return x[..., :half], x[..., half:]


def join_channels(kept, factored):
  return jnp.concatenate([kept, factored], -1)


class Squeeze(Bijector):

  def forward(self, x, ctx=None):
    b, h, w, c = x.shape
    if h % 2 or w % 2:
      raise ValueError(f"squeeze needs even height and width, got {h}x{w}")
    z = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, 4 * c)
    return z, no_logdet(x)

  def inverse(self, z, ctx=None):
    b, h, w, c4 = z.shape
    c = c4 // 4
    return z.reshape(b, h, w, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(b, 2 * h, 2 * w, c)
