"""Likelihood conventions: every number jgen reports as nats or bits per dimension follows this module.

- nats per example: -log p(x), natural log, summed over the dimensions of one example.
- bits per dimension for 8-bit images (`likelihood_space` "continuous_unit"): a
  density on [0, 1]^D evaluated at uniformly dequantized pixels x = (k + u) / 256,
  k in {0..255}, u ~ U[0, 1). The discrete probability of the pixels is at least
  the density integrated over its 1/256-wide cell, so
  bpd = (nll / D + D-normalised log-dets) / ln 2 + log2(256) = nll / (D ln 2) + 8,
  an upper bound on the discrete model's bits/dim. A model defined on rescaled
  data y = a x + b (or after a logit transform) adds the log-determinant of that
  change of variables, so its number is again about x in [0, 1].
- bits per dimension of a discrete model over the 256 levels ("discrete_8bit"):
  nll / (D ln 2), no offset.
- binarized images ("binary"): nats on a fixed, seeded Bernoulli binarization of
  the test set (`binarize`), the same draw for every model.
- anything else ("continuous": 2-D toy points): nats per example only.

Each reported value is a `Likelihood` record that says its unit and whether it is
exact, a lower bound on log p (ELBO, diffusion variational bound; an upper bound
on the nll) or an importance-weighted estimate, and with how many samples.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

LN2 = math.log(2.0)
KINDS = ("exact", "lower_bound", "importance_weighted")
SPACES = ("continuous_unit", "discrete_8bit", "binary", "tokens", "continuous")
# Spaces where bits per dimension is defined (8-bit images).
BITS_PER_DIM_SPACES = ("continuous_unit", "discrete_8bit")
BINARIZATION_SEED = 0  # the one fixed binarization of every test set


@dataclasses.dataclass(frozen=True)
class Likelihood:
  """One reported likelihood number with its convention."""

  value: float
  unit: str  # "nats/example" or "bits/dim"
  kind: str  # one of KINDS; about log p, so a "lower_bound" log p is an upper bound on nll and bits/dim
  num_samples: int | None = None  # Monte Carlo samples per example (IWAE K, ELBO draws), None when exact
  convention: str = ""

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"likelihood kind {self.kind!r} is not one of {KINDS}")

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def num_dims(x_shape) -> int:
  """Dimensions of one example given a batch shape [B, ...]."""
  return int(np.prod(x_shape[1:]))


def nats_to_bits_per_dim(nll_nats, dims: int):
  """Nats per example -> bits per dimension, no dequantization offset."""
  return nll_nats / (dims * LN2)


def dequantized_bits_per_dim(nll_nats, dims: int, levels: int = 256):
  """Density on [0,1]^D at uniformly dequantized 8-bit pixels -> bits/dim of the discrete pixels.

  The density of x = (k + u) / levels is levels^D times the density of k + u,
  so the offset is log2(levels) = 8 bits per dimension for 8-bit images.
  """
  return nll_nats / (dims * LN2) + math.log2(levels)


def dequantize(x, rng: jax.Array, levels: int = 256):
  """Images in [0, 1] on the k / (levels - 1) grid -> (k + u) / levels with u ~ U[0, 1)."""
  k = jnp.round(jnp.asarray(x) * (levels - 1))
  return (k + jax.random.uniform(rng, jnp.shape(x))) / levels


def to_levels(x, levels: int = 256):
  """Images in [0, 1] -> integer pixel levels k in {0..levels-1}."""
  return jnp.round(jnp.asarray(x) * (levels - 1)).astype(jnp.int32)


def binarize(x, seed: int = BINARIZATION_SEED):
  """The fixed binarization of a test set: pixel ~ Bernoulli(intensity), seeded so every model sees the same one."""
  return jax.random.bernoulli(jax.random.key(seed), jnp.asarray(x)).astype(jnp.float32)


def prepare(space: str, x, rng: jax.Array):
  """Data as the loader gives it -> the data a likelihood in `space` is measured on.

  continuous_unit: uniformly dequantized; binary: binarized, pixel ~ Bernoulli(intensity), which leaves
  already binary data (a fixed binarization of a test set) unchanged; others: as given.
  """
  if space == "continuous_unit":
    return dequantize(x, rng)
  if space == "binary":
    return jax.random.bernoulli(rng, x).astype(jnp.float32)
  if space not in SPACES:
    raise ValueError(f"likelihood space {space!r} is not one of {SPACES}")
  return x


def bits_per_dim(space: str, nll_nats, dims: int):
  """Bits per dimension of an nll in nats under `space`'s convention (None where it is not defined)."""
  if space == "continuous_unit":
    return dequantized_bits_per_dim(nll_nats, dims)
  if space == "discrete_8bit":
    return nats_to_bits_per_dim(nll_nats, dims)
  return None


def per_example(space: str, nll_nats, dims: int) -> dict:
  """Per-example eval metrics of an nll: {"nll"} and, where the space defines it, {"bits_per_dim"}."""
  out = {"nll": nll_nats}
  bpd = bits_per_dim(space, nll_nats, dims)
  if bpd is not None:
    out["bits_per_dim"] = bpd
  return out


def rescale_log_det(dims: int, scale: float):
  """log |det| of y = scale * x + shift on D dimensions: add it to log p(y) to get log p(x)."""
  return dims * math.log(abs(scale))


def logit_transform(x, alpha: float = 0.05):
  """y = logit(alpha + (1 - 2 alpha) x) and log |dy/dx| per example, so that log p(x) = log p(y) + log_det.

  Flows model y; the log-det brings their density back to x in [0, 1].
  """
  x = jnp.asarray(x)
  s = alpha + (1.0 - 2.0 * alpha) * x
  y = jnp.log(s) - jnp.log1p(-s)
  log_det = math.log(1.0 - 2.0 * alpha) - jnp.log(s) - jnp.log1p(-s)
  return y, log_det.reshape(x.shape[0], -1).sum(-1)


def report(nll_nats_per_example, x_shape, space: str, kind: str, num_samples: int | None = None) -> dict:
  """The reported records for mean nll over a test set: nats always, bits/dim where `space` defines it."""
  if space not in SPACES:
    raise ValueError(f"likelihood space {space!r} is not one of {SPACES}")
  nll = float(np.mean(np.asarray(nll_nats_per_example, np.float64)))
  dims = num_dims(x_shape)
  where = {"continuous_unit": "density on [0,1] at uniformly dequantized 8-bit pixels",
           "discrete_8bit": "probability of the 256-level pixels",
           "binary": f"probability of the test set binarized once with seed {BINARIZATION_SEED}",
           "tokens": "probability of the token sequence",
           "continuous": "density of the data as given"}[space]
  out = {"nll": Likelihood(nll, "nats/example", kind, num_samples, f"-log p(x) in nats per example; {where}")}
  formula = {"continuous_unit": "nll / (D ln 2) + 8", "discrete_8bit": "nll / (D ln 2)"}
  if space in formula:
    out["bits_per_dim"] = Likelihood(bits_per_dim(space, nll, dims), "bits/dim", kind, num_samples,
                                     f"{formula[space]} with D = {dims}; {where}")
  if space == "tokens":  # jgen's text data is tokenised by characters: a token is one character
    out["bits_per_char"] = Likelihood(nll / (dims * math.log(2.0)), "bits/char", kind, num_samples,
                                      f"nll / (T ln 2) with T = {dims} characters per sequence; {where}")
  return {k: v.as_dict() for k, v in out.items()}
