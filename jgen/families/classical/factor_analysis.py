"""Factor analysis: x = W z + mu + eps with z ~ N(0, I_k) and eps ~ N(0, diag(psi)).

Unlike PPCA the noise differs per dimension, so there is no closed form; EM
(Rubin & Thayer, 1982) runs on the data's sufficient statistics.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jgen.families.classical import lowrank_gaussian as lrg


class FAParams(NamedTuple):
  mu: jax.Array  # [D]
  w: jax.Array  # [D, k]
  psi: jax.Array  # [D]


def init(rng, mean, cov, k):
  """A small random W and psi the data variances: EM breaks the symmetry from there."""
  var = jnp.diagonal(cov)
  w = jax.random.normal(rng, (cov.shape[0], k), cov.dtype) * jnp.sqrt(var)[:, None] * 0.1
  return FAParams(mean, w, var)


def em_step(params, mean, cov, min_psi=1e-12):
  """One EM update from the data mean and biased covariance."""
  _, w, psi = params
  k = w.shape[1]
  w_over_psi = w / psi[:, None]
  g = jnp.linalg.inv(jnp.eye(k, dtype=w.dtype) + w.T @ w_over_psi)  # Cov(z | x), k x k
  b = g @ w_over_psi.T  # E[z | x] = b (x - mu)
  sb = cov @ b.T  # E[(x - mu) z^T]
  ezz = g + b @ sb  # E[z z^T]
  w_new = jnp.linalg.solve(ezz, sb.T).T
  psi_new = jnp.maximum(jnp.diagonal(cov) - jnp.sum(w_new * sb, axis=1), min_psi)
  return FAParams(mean, w_new, psi_new)


def log_prob(params, x):
  return lrg.log_prob(params.mu, params.w, params.psi, x)


def mean_log_likelihood(params, mean, cov):
  return lrg.mean_log_likelihood(params.mu, params.w, params.psi, mean, cov)


def sample(params, rng, n):
  return lrg.sample(params.mu, params.w, params.psi, rng, n)


def encode(params, x):
  return lrg.posterior(params.mu, params.w, params.psi, x)


def decode(params, z):
  return z @ params.w.T + params.mu


def covariance(params):
  return lrg.covariance(params.w, params.psi)
