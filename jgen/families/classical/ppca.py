"""Probabilistic PCA: x = W z + mu + eps, z ~ N(0, I_k), eps ~ N(0, sigma^2 I_D).

Maximum likelihood has a closed form (Tipping & Bishop, 1999): mu is the data
mean, W spans the top-k eigenvectors of the covariance S scaled by
sqrt(lambda_i - sigma^2), and sigma^2 is the mean of the discarded eigenvalues.
EM reaches the same fixed point without an eigendecomposition. Noise-free PCA
is the sigma -> 0 limit, where the posterior mean becomes the orthogonal
projection (W^T W)^{-1} W^T (x - mu).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jgen.families.classical import lowrank_gaussian as lrg


class PPCAParams(NamedTuple):
  mu: jax.Array  # [D]
  w: jax.Array  # [D, k]
  sigma2: jax.Array  # []


def closed_form(mean, cov, k, ddof_correction=1.0):
  """The maximum-likelihood PPCA from the data mean and (biased) covariance.

  `ddof_correction` rescales the covariance (N / (N - 1) gives the unbiased
  estimate that scikit-learn's PCA uses).
  """
  evals, evecs = jnp.linalg.eigh(cov * ddof_correction)
  evals, evecs = evals[::-1], evecs[:, ::-1]
  sigma2 = jnp.mean(evals[k:])
  w = evecs[:, :k] * jnp.sqrt(jnp.maximum(evals[:k] - sigma2, 0.0))
  return PPCAParams(mean, w, sigma2)


def fit(x, k):
  """Closed-form maximum-likelihood PPCA of the rows of x."""
  mean, cov = lrg.moments(x)
  return closed_form(mean, cov, k)


def random_init(rng, mean, cov, k):
  """A random start for EM: Gaussian W at the data's scale, sigma^2 half the mean variance."""
  scale = jnp.sqrt(jnp.trace(cov) / cov.shape[0])
  w = jax.random.normal(rng, (cov.shape[0], k), cov.dtype) * scale
  return PPCAParams(mean, w, 0.5 * jnp.trace(cov) / cov.shape[0])


def em_step(params, mean, cov):
  """One EM update from the data's sufficient statistics (mean, biased covariance)."""
  _, w, s2 = params
  dim, k = w.shape
  eye = jnp.eye(k, dtype=w.dtype)
  m = w.T @ w + s2 * eye
  sw = cov @ w
  minv_wsw = jnp.linalg.solve(m, w.T @ sw)
  w_new = jnp.linalg.solve((s2 * eye + minv_wsw).T, sw.T).T
  s2_new = (jnp.trace(cov) - jnp.trace(sw @ jnp.linalg.solve(m, w_new.T))) / dim
  return PPCAParams(mean, w_new, s2_new)


def noise(params):
  return jnp.broadcast_to(params.sigma2, params.mu.shape)


def log_prob(params, x):
  return lrg.log_prob(params.mu, params.w, noise(params), x)


def mean_log_likelihood(params, mean, cov):
  return lrg.mean_log_likelihood(params.mu, params.w, noise(params), mean, cov)


def sample(params, rng, n):
  return lrg.sample(params.mu, params.w, noise(params), rng, n)


def encode(params, x):
  """Posterior mean [B, k] and covariance [k, k] of z given x."""
  return lrg.posterior(params.mu, params.w, noise(params), x)


def decode(params, z):
  """The mean of x given z."""
  return z @ params.w.T + params.mu


def covariance(params):
  return lrg.covariance(params.w, noise(params))


def pca_projection(params, x):
  """Noise-free PCA codes: the sigma -> 0 limit of the posterior mean."""
  w = params.w
  return jnp.linalg.solve(w.T @ w, w.T @ (x - params.mu).T).T


def num_params(dim, k):
  """Free parameters: mean, W up to rotation, and sigma^2."""
  return dim + dim * k - k * (k - 1) // 2 + 1
