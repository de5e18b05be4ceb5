"""The bijector protocol and its composition.

`forward(x, ctx) -> (z, logdet)` with logdet = log |det dz/dx| per example [B]; `inverse(z, ctx) -> x`, exact;
`initialize(x, ctx)` runs `forward` after setting any parameter that is initialised from data. The family
calls `initialize` once, on the batch its `init(rng, batch)` receives: a method of its own rather than a flag
the layer flips, so the same trace serves under `jit` and `eval_shape` and a restored state is never
re-initialised. `ctx` is a conditioning array for layers that read one (the variational dequantizer's
view of the pixels, the kept half of a multiscale split); other layers ignore it.
"""

import jax.numpy as jnp
from flax import nnx


def sum_except_batch(a):
  """[B, ...] -> [B]: the per-example sum of a log-determinant's terms."""
  return a.reshape(a.shape[0], -1).sum(-1)


def no_logdet(x):
  """The log-determinant [B] of a volume-preserving layer."""
  return jnp.zeros(x.shape[:1], x.dtype)


class Bijector(nnx.Module):

  def forward(self, x, ctx=None):
    raise NotImplementedError

  def inverse(self, z, ctx=None):
    raise NotImplementedError

  def initialize(self, x, ctx=None):
    return self.forward(x, ctx)


class Identity(Bijector):
  """Data modelled as given (2-D points)."""

  def forward(self, x, ctx=None):
    return x, no_logdet(x)

  def inverse(self, z, ctx=None):
    return z


class Chain(Bijector):
  """Layers applied in order; log-determinants add (the chain rule)."""

  def __init__(self, layers):
    self.layers = nnx.List(layers)

  def _run(self, x, ctx, init):
    logdet = no_logdet(x)
    for layer in self.layers:
      x, ld = layer.initialize(x, ctx) if init else layer.forward(x, ctx)
      logdet = logdet + ld
    return x, logdet

  def forward(self, x, ctx=None):
    return self._run(x, ctx, init=False)

  def initialize(self, x, ctx=None):
    return self._run(x, ctx, init=True)

  def inverse(self, z, ctx=None):
    for layer in reversed(self.layers):
      z = layer.inverse(z, ctx)
    return z
