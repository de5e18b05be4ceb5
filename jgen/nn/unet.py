"""A U-Net for image-to-image prediction conditioned on a scalar time and an optional class.

The architecture of DDPM (Ho et al., 2020): residual blocks with group norm and a
time-embedding scale and shift, self-attention at chosen (low) resolutions, a stack of
resolution levels with configurable channel multipliers, skip connections from
every block on the way down to a block on the way up. Spatial sizes that do not
halve evenly (28 -> 14 -> 7 -> 4) are handled by resizing on the way up to the
skip's size, so the output always has the input's height and width.

`dtype` is the compute dtype (bfloat16 for mixed precision); parameters stay
float32 and the output is float32.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.nn.attention import SelfAttention2d, group_count
from jgen.nn.embeddings import TimeEmbedding


class ResBlock(nnx.Module):
  """GN-SiLU-conv, GN modulated by the embedding (h * (1 + scale) + shift), SiLU-dropout-conv, plus skip.

  The embedding acts after the second norm (Dhariwal & Nichol's scale-shift norm):
  a shift added before a group norm is partly undone by it, entirely so when each
  group holds one channel.
  """

  def __init__(self, cin: int, cout: int, temb_dim: int, *, dropout: float = 0.0, dtype=jnp.float32,
               rngs: nnx.Rngs):
    self.norm1 = nnx.GroupNorm(cin, num_groups=group_count(cin), dtype=dtype, rngs=rngs)
    self.conv1 = nnx.Conv(cin, cout, (3, 3), dtype=dtype, rngs=rngs)
    self.temb_proj = nnx.Linear(temb_dim, 2 * cout, dtype=dtype, rngs=rngs)
    self.norm2 = nnx.GroupNorm(cout, num_groups=group_count(cout), dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(dropout) if dropout > 0 else None
    # Zero-initialised so each block starts as the identity (stable deep stacks).
    self.conv2 = nnx.Conv(cout, cout, (3, 3), dtype=dtype, kernel_init=nnx.initializers.zeros, rngs=rngs)
    self.skip = nnx.Conv(cin, cout, (1, 1), dtype=dtype, rngs=rngs) if cin != cout else None

  def __call__(self, x, temb, rngs: nnx.Rngs | None = None):
    h = self.conv1(nnx.silu(self.norm1(x)))
    scale, shift = jnp.split(self.temb_proj(nnx.silu(temb))[:, None, None, :], 2, axis=-1)
    h = nnx.silu(self.norm2(h) * (1.0 + scale) + shift)
    if self.dropout is not None:
      h = self.dropout(h, deterministic=rngs is None, rngs=rngs)
    h = self.conv2(h)
    return (x if self.skip is None else self.skip(x)) + h


class ResAttnBlock(nnx.Module):
  """A residual block followed, at attention levels, by self-attention."""

  def __init__(self, cin: int, cout: int, temb_dim: int, *, attention: bool, num_heads: int,
               dropout: float, dtype, rngs: nnx.Rngs):
    self.res = ResBlock(cin, cout, temb_dim, dropout=dropout, dtype=dtype, rngs=rngs)
    self.attn = SelfAttention2d(cout, num_heads=num_heads, dtype=dtype, rngs=rngs) if attention else None

  def __call__(self, x, temb, rngs=None):
    h = self.res(x, temb, rngs)
    return h if self.attn is None else self.attn(h)


class Downsample(nnx.Module):
  def __init__(self, channels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.conv = nnx.Conv(channels, channels, (3, 3), strides=(2, 2), dtype=dtype, rngs=rngs)

  def __call__(self, x):
    return self.conv(x)


class Upsample(nnx.Module):
  """Nearest-neighbour resize to `size` (twice the input, or the odd skip size), then a conv."""

  def __init__(self, channels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.conv = nnx.Conv(channels, channels, (3, 3), dtype=dtype, rngs=rngs)

  def __call__(self, x, size):
    b, _, _, c = x.shape
    return self.conv(jax.image.resize(x, (b, size[0], size[1], c), "nearest"))


class UNet(nnx.Module):
  """eps (or v) = UNet(x_t, t, label); output shape == input shape with `out_channels` channels.

  Args:
    in_channels / out_channels: image channels (out defaults to in).
    channels: channels of the first level; level i has channels * channel_mults[i].
    num_res_blocks: residual blocks per level on the way down (one more on the way up).
    attention_levels: indices of the levels (0 = full resolution) that get self-attention
      after each residual block; the middle always has one.
    num_classes: > 0 adds a class embedding with one extra "no label" index
      (`num_classes`) used for unconditional predictions in classifier-free guidance.
  """

  def __init__(self, in_channels: int, *, out_channels: int | None = None, channels: int = 64,
               channel_mults: Sequence[int] = (1, 2, 2), num_res_blocks: int = 2,
               attention_levels: Sequence[int] = (1,), num_heads: int = 1, dropout: float = 0.0,
               num_classes: int = 0, dtype=jnp.float32, rngs: nnx.Rngs):
    out_channels = out_channels or in_channels
    temb_dim = 4 * channels
    self.dtype = dtype
    self.num_classes = num_classes
    self.time_embed = TimeEmbedding(channels, temb_dim, dtype=dtype, rngs=rngs)
    self.class_embed = nnx.Embed(num_classes + 1, temb_dim, rngs=rngs) if num_classes else None
    self.conv_in = nnx.Conv(in_channels, channels, (3, 3), dtype=dtype, rngs=rngs)

    block = dict(dropout=dropout, dtype=dtype, rngs=rngs)
    res_attn = dict(num_heads=num_heads, **block)
    down, skip_channels, ch = [], [channels], channels
    for level, mult in enumerate(channel_mults):
      for _ in range(num_res_blocks):
        down.append(ResAttnBlock(ch, mult * channels, temb_dim, attention=level in attention_levels,
                                 **res_attn))
        ch = mult * channels
        skip_channels.append(ch)
      if level != len(channel_mults) - 1:
        down.append(Downsample(ch, dtype=dtype, rngs=rngs))
        skip_channels.append(ch)
    self.down = nnx.List(down)

    self.mid1 = ResBlock(ch, ch, temb_dim, **block)
    self.mid_attn = SelfAttention2d(ch, num_heads=num_heads, dtype=dtype, rngs=rngs)
    self.mid2 = ResBlock(ch, ch, temb_dim, **block)

    up = []
    for level, mult in reversed(list(enumerate(channel_mults))):
      for _ in range(num_res_blocks + 1):
        up.append(ResAttnBlock(ch + skip_channels.pop(), mult * channels, temb_dim,
                               attention=level in attention_levels, **res_attn))
        ch = mult * channels
      if level != 0:
        up.append(Upsample(ch, dtype=dtype, rngs=rngs))
    self.up = nnx.List(up)

    self.norm_out = nnx.GroupNorm(ch, num_groups=group_count(ch), dtype=dtype, rngs=rngs)
    self.conv_out = nnx.Conv(ch, out_channels, (3, 3), dtype=dtype, kernel_init=nnx.initializers.zeros,
                             rngs=rngs)

  def __call__(self, x, t, label=None, *, rngs: nnx.Rngs | None = None):
    """x [B,H,W,C] float, t [B] (timestep index as float), label int [B] or None; `rngs`
    with a "dropout" stream turns dropout on (training)."""
    temb = self.time_embed(t)
    if self.class_embed is not None:
      if label is None:
        label = jnp.full((x.shape[0],), self.num_classes, jnp.int32)
      temb = temb + self.class_embed(label)
    temb = temb.astype(self.dtype)

    h = self.conv_in(x.astype(self.dtype))
    skips = [h]
    for layer in self.down:
      h = layer(h) if isinstance(layer, Downsample) else layer(h, temb, rngs)
      skips.append(h)

    h = self.mid2(self.mid_attn(self.mid1(h, temb, rngs)), temb, rngs)

    for layer in self.up:
      if isinstance(layer, Upsample):
        h = layer(h, skips[-1].shape[1:3])
      else:
        h = layer(jnp.concatenate([h, skips.pop()], axis=-1), temb, rngs)
    return self.conv_out(nnx.silu(self.norm_out(h))).astype(jnp.float32)
