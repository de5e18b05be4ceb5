"""What the classical families share: data in and out of flat vectors, exact likelihoods.

Classical models see data as flat vectors [B, D]. Images are measured in their
likelihood space (`continuous_unit`: dequantized uniformly, x = (k + u) / 256,
so the density on [0, 1]^D bounds the probability of the 8-bit image and
bits/dim = nll / (D ln 2) + 8); two-dimensional points pass through unchanged
and report nll only. The fit is EM (or variational), one iteration per
`train_step`, without an optimizer: the parameters live in `state.params["model"]`.
"""

import jax.numpy as jnp
import ml_collections

from jgen.family import Family
from jgen.train.state import TrainState


class ClassicalFamily(Family):
  """A closed-form / EM family: parameters are plain arrays, updated without an optimizer."""

  likelihood = "exact"
  latents = True

  @classmethod
  def defaults(cls):
    return ml_collections.ConfigDict({"model": {"name": ""}})  # no optim block: nothing is trained by gradients

  def flat(self, batch, rng):
    """The batch's data in the likelihood space (images dequantized with `rng`) as [B, D] float32."""
    x = self.prepare_data(jnp.asarray(batch["x"], jnp.float32), rng)
    return x.reshape(x.shape[0], -1)

  def flatten(self, x):
    return jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)

  def to_data(self, x):
    """Flat vectors back to the data's shape (images clipped to [0, 1])."""
    if not self.spec.is_image:
      return x
    return jnp.clip(x, 0.0, 1.0).reshape((x.shape[0],) + self.spec.shape)

  def likelihood_metrics(self, nll):
    from jgen.eval import likelihood

    return likelihood.per_example(self.space, nll, self.spec.dims)

  def new_state(self, params, buffers=None):
    return TrainState.create({"model": params}, buffers=buffers)
