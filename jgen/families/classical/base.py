"""What the classical families share: images in and out of flat vectors, bits per dimension.

Classical models see data as flat vectors. Images arrive as float32 in [0, 1]
with shape [B, H, W, C]; for a density on a continuous space they are
dequantized uniformly, y = (255 x + u) / 256 with u ~ U[0, 1), so the density
of y on [0, 1]^D bounds the probability of the 8-bit image:
bits/dim = nll / (D ln 2) + 8 (nll in nats of the density on [0, 1]^D).
Two-dimensional points pass through unchanged and report nll only.
"""

import math

import jax
import jax.numpy as jnp

from jgen.family import Family
from jgen.train.state import TrainState


def dequantize(x, rng):
  """Uniform dequantization of [0, 1] images stored at 8 bits."""
  return (x * 255.0 + jax.random.uniform(rng, x.shape, x.dtype)) / 256.0


def bits_per_dim(nll, dim):
  """Bits per dimension of 8-bit data from the nll (nats) of its dequantized density on [0, 1]^D."""
  return nll / (dim * math.log(2.0)) + 8.0


class ClassicalFamily(Family):
  """A closed-form / EM family: parameters are plain arrays, updated without an optimizer."""

  log_prob_kind = "exact"

  def __init__(self, config):
    super().__init__(config)
    self.is_image = not str(config.data.get("name", "")).startswith("toy")
    self.main_metric = "bits_per_dim" if self.is_image else "nll"
    self.data_shape = None

  def flat(self, batch, rng):
    """The batch's data as [B, D] float32, images dequantized with `rng`."""
    x = jnp.asarray(batch["x"], jnp.float32)
    if self.data_shape is None:
      self.data_shape = tuple(x.shape[1:])
    if x.ndim > 2:
      x = dequantize(x, rng).reshape(x.shape[0], -1)
    return x

  def to_data(self, x):
    """Flat vectors back to the data's shape (images clipped to [0, 1])."""
    if self.data_shape is None or len(self.data_shape) == 1:
      return x
    return jnp.clip(x, 0.0, 1.0).reshape((x.shape[0],) + self.data_shape)

  def flatten(self, x):
    return jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)

  def likelihood_metrics(self, nll, dim):
    metrics = {"nll": nll}
    if self.is_image:
      metrics["bits_per_dim"] = bits_per_dim(nll, dim)
    return metrics

  def new_state(self, params, extra=None):
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state={}, extra=extra or {})

  def eval_step(self, state, batch, rng):
    x = self.flat(batch, rng)
    return self.likelihood_metrics(-self.log_prob(state, x), x.shape[1])
