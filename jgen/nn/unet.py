"""A U-Net for image-to-image prediction conditioned on a scalar time and an optional class.

The architecture of DDPM (Ho et al., 2020): residual blocks with group norm and a
time-embedding scale and shift, self-attention at chosen (low) resolutions, a stack of
resolution levels with configurable channel multipliers, skip connections from
every block on the way down to a block on the way up. Spatial sizes that do not
halve evenly (28 -> 14 -> 7 -> 4) are handled by resizing on the way up to the
skip's size, so the output always has the input's height and width.

`dtype` is the compute dtype (bfloat16 for mixed precision); parameters stay
float32 and the output is float32.

Consecutive residual blocks of one shape (same widths in and out, same skip width,
same attention) form a `BlockRun`. With `scan_blocks` a run of n > 1 blocks holds
one block with parameters stacked on a leading axis of size n (built by `nnx.vmap`)
and applies it with `nnx.scan`, so XLA sees one block body instead of n copies; the
function and the parameter count are those of the unrolled network (tested). In
the DDPM Fashion-MNIST full config 11 of the 17 blocks fall in runs of 2 or 3.

It is off by default because on XLA:CPU it costs more than it saves (CPU seconds on
a shared 2-core machine, benchmarks/compile_time.py): the full config's train step
compiled in 60 s scanned against 42 s unrolled (its loss gradient alone in 43-48 s
against 26-31 s), and a run of two 28x28x64 blocks, forward and backward at batch 32,
took 18-21 s per call scanned against 1-2 s unrolled (XLA:CPU runs the convolution
gradients inside a while loop far slower). It is meant for accelerators, where it is
not yet measured.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.nn.attention import SelfAttention2d, group_count
from jgen.nn import dropout as dropout_lib
from jgen.nn.conv import Conv
from jgen.nn import rngs as rngs_lib
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
    self.conv1 = Conv(cin, cout, (3, 3), dtype=dtype, rngs=rngs)
    self.temb_proj = nnx.Linear(temb_dim, 2 * cout, dtype=dtype, rngs=rngs)
    self.norm2 = nnx.GroupNorm(cout, num_groups=group_count(cout), dtype=dtype, rngs=rngs)
    self.dropout_rate = dropout
    # Zero-initialised so each block starts as the identity (stable deep stacks).
    self.conv2 = Conv(cout, cout, (3, 3), dtype=dtype, kernel_init=nnx.initializers.zeros, rngs=rngs)
    self.skip = Conv(cin, cout, (1, 1), dtype=dtype, rngs=rngs) if cin != cout else None

  def __call__(self, x, temb, rngs: nnx.Rngs | None = None):
    h = self.conv1(nnx.silu(self.norm1(x)))
    scale, shift = jnp.split(self.temb_proj(nnx.silu(temb))[:, None, None, :], 2, axis=-1)
    h = nnx.silu(self.norm2(h) * (1.0 + scale) + shift)
    if self.dropout_rate > 0 and rngs is not None:
      h = dropout_lib.dropout(h, self.dropout_rate, rngs.dropout())  # half the random bits of nnx.Dropout
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
    self.conv = Conv(channels, channels, (3, 3), strides=(2, 2), dtype=dtype, rngs=rngs)

  def __call__(self, x):
    return self.conv(x)


class Upsample(nnx.Module):
  """Nearest-neighbour resize to `size` (twice the input, or the odd skip size), then a conv."""

  def __init__(self, channels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.conv = Conv(channels, channels, (3, 3), dtype=dtype, rngs=rngs)

  def __call__(self, x, size):
    b, _, _, c = x.shape
    return self.conv(jax.image.resize(x, (b, size[0], size[1], c), "nearest"))


class BlockRun(nnx.Module):
  """`n` residual(-attention) blocks of one shape applied in sequence: a list, or with `scan` (and n > 1) one
  block whose parameters are stacked on a leading axis of size n, run by `nnx.scan`.

  Each call draws one dropout key and splits it n ways (block i gets key i), the same in both forms, so the
  scanned run computes the unrolled run's function draw for draw. On the way up, block i's input is its
  carried input concatenated with skip i.
  """

  def __init__(self, n: int, cin: int, cout: int, temb_dim: int, *, scan: bool, rngs: nnx.Rngs, **block):
    self.n = n
    self.scan = scan and n > 1
    make = lambda rngs: ResAttnBlock(cin, cout, temb_dim, rngs=rngs, **block)
    if self.scan:
      self.blocks = nnx.split_rngs(splits=n)(nnx.vmap(make, in_axes=0, out_axes=0))(rngs)
    else:
      self.blocks = nnx.List([make(rngs) for _ in range(n)])

  def __call__(self, h, temb, rngs: nnx.Rngs | None = None, skips=None):
    """h [B,H,W,C] -> (the last block's output, a list of each block's output); `skips`, a list of n arrays,
    are concatenated to the blocks' inputs in order."""
    keys = None if rngs is None else jax.random.split(rngs.dropout(), self.n)
    block_rngs = lambda key: None if key is None else rngs_lib.Rngs(dropout=key)
    with_skip = lambda h, skip: h if skip is None else jnp.concatenate([h, skip], axis=-1)
    if not self.scan:
      outs = []
      for i, block in enumerate(self.blocks):
        h = block(with_skip(h, None if skips is None else skips[i]), temb,
                  block_rngs(None if keys is None else keys[i]))
        outs.append(h)
      return h, outs

    down = skips is None  # on the way down every block's output is a skip; on the way up none is kept

    @nnx.scan(in_axes=(nnx.Carry, 0, 0, 0), out_axes=(nnx.Carry, 0), graph=False)
    def body(h, block, key, skip):
      h = block(with_skip(h, skip), temb, block_rngs(key))
      return h, (h if down else None)

    h, outs = body(h, self.blocks, keys, None if skips is None else jnp.stack(skips))
    return h, (list(outs) if down else [])


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
    scan_blocks: build each run of equal consecutive blocks stacked and apply it with `nnx.scan` (see the
      module's docstring): the same function and parameter count, a smaller program to compile.
  """

  def __init__(self, in_channels: int, *, out_channels: int | None = None, channels: int = 64,
               channel_mults: Sequence[int] = (1, 2, 2), num_res_blocks: int = 2,
               attention_levels: Sequence[int] = (1,), num_heads: int = 1, dropout: float = 0.0,
               num_classes: int = 0, scan_blocks: bool = False, dtype=jnp.float32, rngs: nnx.Rngs):
    out_channels = out_channels or in_channels
    temb_dim = 4 * channels
    self.dtype = dtype
    self.num_classes = num_classes
    self.time_embed = TimeEmbedding(channels, temb_dim, dtype=dtype, rngs=rngs)
    self.class_embed = nnx.Embed(num_classes + 1, temb_dim, rngs=rngs) if num_classes else None
    self.conv_in = Conv(in_channels, channels, (3, 3), dtype=dtype, rngs=rngs)

    block = dict(dropout=dropout, dtype=dtype, rngs=rngs)
    res_attn = dict(num_heads=num_heads, scan=scan_blocks, **block)
    down, skip_channels, ch = [], [channels], channels
    for level, mult in enumerate(channel_mults):
      # (input, skip, output widths), one per block; skips are only concatenated on the way up
      shapes = []
      for _ in range(num_res_blocks):
        shapes.append((ch, 0, mult * channels))
        ch = mult * channels
        skip_channels.append(ch)
      down += [BlockRun(n, cin, cout, temb_dim, attention=level in attention_levels, **res_attn)
               for (cin, _, cout), n in _runs(shapes)]
      if level != len(channel_mults) - 1:
        down.append(Downsample(ch, dtype=dtype, rngs=rngs))
        skip_channels.append(ch)
    self.down = nnx.List(down)

    self.mid1 = ResBlock(ch, ch, temb_dim, **block)
    self.mid_attn = SelfAttention2d(ch, num_heads=num_heads, dtype=dtype, rngs=rngs)
    self.mid2 = ResBlock(ch, ch, temb_dim, **block)

    up = []
    for level, mult in reversed(list(enumerate(channel_mults))):
      shapes = []
      for _ in range(num_res_blocks + 1):
        shapes.append((ch, skip_channels.pop(), mult * channels))
        ch = mult * channels
      up += [BlockRun(n, cin + skip, cout, temb_dim, attention=level in attention_levels, **res_attn)
             for (cin, skip, cout), n in _runs(shapes)]
      if level != 0:
        up.append(Upsample(ch, dtype=dtype, rngs=rngs))
    self.up = nnx.List(up)

    self.norm_out = nnx.GroupNorm(ch, num_groups=group_count(ch), dtype=dtype, rngs=rngs)
    self.conv_out = Conv(ch, out_channels, (3, 3), dtype=dtype, kernel_init=nnx.initializers.zeros,
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
      if isinstance(layer, Downsample):
        h = layer(h)
        skips.append(h)
      else:
        h, outs = layer(h, temb, rngs)
        skips += outs

    h = self.mid2(self.mid_attn(self.mid1(h, temb, rngs)), temb, rngs)

    for layer in self.up:
      if isinstance(layer, Upsample):
        h = layer(h, skips[-1].shape[1:3])
      else:
        h, _ = layer(h, temb, rngs, skips=[skips.pop() for _ in range(layer.n)])
    return self.conv_out(nnx.silu(self.norm_out(h))).astype(jnp.float32)


def _runs(shapes):
  """[(input, skip, output widths)] of consecutive blocks -> [(shape, count)]: equal neighbours that keep their
  width (so the carried activation keeps its shape) are counted together, any other block alone."""
  runs = []
  for shape in shapes:
    if runs and runs[-1][0] == shape and shape[0] == shape[2]:
      runs[-1][1] += 1
    else:
      runs.append([shape, 1])
  return [(shape, n) for shape, n in runs]
