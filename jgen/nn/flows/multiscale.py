"""A whole flow network: preprocessing, then levels, each its steps and then half its channels factored out
(RealNVP's multiscale architecture); the factored halves and the last level's output are the latent.

The latent is one flat vector [B, D] (the factored parts in order, then the last), standard normal, or
normal around a learned per-class mean (`num_classes` > 0). A factored half may get Glow's learned prior
N(mean(kept), exp(log_std(kept))^2), written as the bijection e = (z - mean) * exp(-log_std) so that every
part of the latent is standard normal and `inverse` of the latent is still exact (encode / decode, and
sampling at a temperature that scales every part alike).
"""

import math

import jax.numpy as jnp
from flax import nnx

from jgen.nn.conv import Conv
from jgen.nn.flows.base import Bijector, Chain, sum_except_batch
from jgen.nn.flows.squeeze import join_channels, split_channels


class SplitPrior(Bijector):
  """The factored half given the kept half (ctx); a zero-initialised conv, so it starts standard normal."""

  def __init__(self, kept_channels: int, factored_channels: int, *, rngs: nnx.Rngs):
    self.net = Conv(kept_channels, 2 * factored_channels, (3, 3), kernel_init=nnx.initializers.zeros,
                        bias_init=nnx.initializers.zeros, rngs=rngs)

  def forward(self, x, ctx=None):
    mean, log_std = jnp.split(self.net(ctx), 2, axis=-1)
    return (x - mean) * jnp.exp(-log_std), -sum_except_batch(log_std)

  def inverse(self, z, ctx=None):
    mean, log_std = jnp.split(self.net(ctx), 2, axis=-1)
    return z * jnp.exp(log_std) + mean


class Level(nnx.Module):
  """Steps at one scale; `factor`: half the channels leave afterwards (through `prior` when one is given)."""

  def __init__(self, flow: Chain, factor: bool, prior: SplitPrior | None = None):
    self.flow, self.factor, self.prior = flow, factor, prior


class FlowNet(nnx.Module):
  """x (data) <-> z (flat latent [B, D]). `latent_shapes`: the shapes of the factored parts, then the last.
  `dequantizer`: a variational dequantizer trained with the flow (None: uniform noise)."""

  def __init__(self, preprocess: Bijector, levels, latent_shapes, *, num_classes: int = 0, dequantizer=None,
               rngs: nnx.Rngs):
    self.preprocess = preprocess
    self.levels = nnx.List(levels)
    self.latent_shapes = tuple(tuple(int(d) for d in s) for s in latent_shapes)
    self.dim = sum(math.prod(s) for s in self.latent_shapes)
    self.class_mean = (nnx.Embed(num_classes, self.dim, embedding_init=nnx.initializers.zeros, rngs=rngs)
                       if num_classes else None)
    self.dequantizer = dequantizer

  def _run(self, x, init):
    step = (lambda layer, h, ctx=None: layer.initialize(h, ctx)) if init else (lambda layer, h, ctx=None:
                                                                                 layer.forward(h, ctx))
    h, logdet = step(self.preprocess, x)
    parts = []
    for level in self.levels:
      h, ld = step(level.flow, h)
      logdet = logdet + ld
      if level.factor:
        h, factored = split_channels(h)
        if level.prior is not None:
          factored, ld = step(level.prior, factored, h)
          logdet = logdet + ld
        parts.append(factored)
    parts.append(h)
    return jnp.concatenate([p.reshape(p.shape[0], -1) for p in parts], -1), logdet

  def forward(self, x):
    """(z [B, D], log |det dz/dx| [B])."""
    return self._run(x, init=False)

  def initialize(self, x):
    """`forward`, each ActNorm first set from the batch it sees."""
    return self._run(x, init=True)

  def inverse(self, z):
    sizes = [math.prod(s) for s in self.latent_shapes]
    offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    parts = [z[:, a:b].reshape((z.shape[0],) + s) for a, b, s in zip(offsets, offsets[1:], self.latent_shapes)]
    h, factored = parts[-1], iter(reversed(parts[:-1]))
    for level in reversed(self.levels):
      if level.factor:
        part = next(factored)
        if level.prior is not None:
          part = level.prior.inverse(part, h)
        h = join_channels(h, part)
      h = level.flow.inverse(h)
    return self.preprocess.inverse(h)

  def prior_mean(self, labels, n: int, dtype=jnp.float32):
    """The latent's mean [n, D]: zero, or the class's learned mean."""
    if self.class_mean is None or labels is None:
      return jnp.zeros((n, self.dim), dtype)
    return self.class_mean(labels).astype(dtype)


def log_normal(z, mean=0.0):
  """log N(z; mean, I) summed over the latent [B]."""
  return -0.5 * jnp.sum((z - mean) ** 2, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)

