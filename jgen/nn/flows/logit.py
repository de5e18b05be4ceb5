"""Preprocessing of images in [0, 1] as a bijector, its Jacobian counted.

"logit" (RealNVP): y = logit(alpha + (1 - 2 alpha) x), the convention of `jgen.eval.likelihood.logit_transform`,
whose log-determinant brings the flow's density of y back to a density of x on [0, 1], so bits/dim follow the
evaluation convention (nll / (D ln 2) + 8 on uniformly dequantized 8-bit pixels). alpha keeps the dequantized
extremes (x near 0 or 1) at finite y. "center" (Glow): y = x - 0.5, log-determinant 0.
"""

import jax

from jgen.eval import likelihood
from jgen.nn.flows.base import Bijector, no_logdet

PREPROCESSING = ("logit", "center")


class Logit(Bijector):

  def __init__(self, alpha: float = 0.05):
    if not 0.0 < alpha < 0.5:
      raise ValueError(f"logit alpha must be in (0, 0.5), got {alpha}")
    self.alpha = float(alpha)

  def forward(self, x, ctx=None):
    return likelihood.logit_transform(x, self.alpha)

  def inverse(self, z, ctx=None):
    return (jax.nn.sigmoid(z) - self.alpha) / (1.0 - 2.0 * self.alpha)


class Center(Bijector):

  def forward(self, x, ctx=None):
    return x - 0.5, no_logdet(x)

  def inverse(self, z, ctx=None):
    return z + 0.5


def preprocessing(name: str, alpha: float) -> Bijector:
  if name == "logit":
    return Logit(alpha)
  if name == "center":
    return Center()
  raise ValueError(f"unknown preprocessing {name!r}; use one of {', '.join(PREPROCESSING)}")
