"""Dequantization: a density on [0, 1]^D is scored on 8-bit pixels k by spreading each over its cell,
x = (k + u) / 256, u in [0, 1)^D.

"uniform": u ~ U[0, 1)^D, the evaluation convention itself (`jgen.eval.likelihood.dequantize`); log q = 0.
"variational" (Flow++, Ho et al. 2019): u ~ q(u | k), a small conditional flow, u = sigmoid(g(eps; k)) with
eps ~ N(0, I). Since log P(k) >= E_q[log p(x) - log q(u | k)] - D log 256, reporting log p(x) - log q(u | k)
in the same convention (bits/dim = nll / (D ln 2) + 8) gives a tighter bound on the same 8-bit pixels; q is
trained with the flow on that bound.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.eval import likelihood
from jgen.nn.conv import Conv
from jgen.nn.flows.base import Chain, sum_except_batch
from jgen.nn.flows.coupling import Coupling

DEQUANTIZATIONS = ("uniform", "variational")
LEVELS = 256


def uniform(x, rng):
  """(dequantized x, log q = 0) of images on the k / 255 grid."""
  return likelihood.dequantize(x, rng), jnp.zeros(x.shape[:1], x.dtype)


class VariationalDequantizer(nnx.Module):
  """q(u | k) for images [H, W, C]: checkerboard couplings on Gaussian noise, each reading features of the
  pixels, then a sigmoid onto (0, 1). `dtype` is the couplings' networks' compute dtype (jgen.nn.precision)."""

  def __init__(self, shape, num_steps: int, features: int, *, dtype=None, rngs: nnx.Rngs):
    self.context = Conv(shape[-1], features, (3, 3), rngs=rngs)
    self.flow = Chain([Coupling(shape, "checkerboard", i, kind="affine", scale="tanh", features=features,
                                num_blocks=1, ctx_channels=features, dtype=dtype, rngs=rngs)
                       for i in range(num_steps)])

  def _context(self, levels):
    return jax.nn.relu(self.context(2.0 * levels / (LEVELS - 1) - 1.0))

  def transform(self, eps, x):
    """u in (0, 1) from noise eps given images x, and log |det du/deps| [B]."""
    y, logdet = self.flow.forward(eps, self._context(likelihood.to_levels(x).astype(eps.dtype)))
    return jax.nn.sigmoid(y), logdet + sum_except_batch(jax.nn.log_sigmoid(y) + jax.nn.log_sigmoid(-y))

  def __call__(self, x, rng):
    """(dequantized x = (k + u) / 256, log q(u | k) [B]) of images x on the k / 255 grid."""
    eps = jax.random.normal(rng, x.shape, x.dtype)
    u, logdet = self.transform(eps, x)
    log_q = sum_except_batch(jax.scipy.stats.norm.logpdf(eps)) - logdet
    levels = likelihood.to_levels(x).astype(x.dtype)
    return (levels + u) / LEVELS, log_q

