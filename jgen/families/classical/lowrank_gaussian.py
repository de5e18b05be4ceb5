"""Gaussians with low-rank-plus-diagonal covariance C = W W^T + diag(psi).

PPCA (psi = sigma^2 everywhere), factor analysis (free psi) and Student-t PPCA
share this structure. Everything goes through the k x k matrix
M = I + W~^T W~ with W~ = diag(psi)^{-1/2} W, so no D x D matrix is inverted.
"""

import math

import jax
import jax.numpy as jnp

from jgen.families.classical import blocked

GRAM_BAND = 128  # columns per band of the covariance product
GRAM_ROWS = 1024  # rows per block: centred in cache, never as a whole copy of x


def _whitened(w, psi):
  """W~ = diag(psi)^{-1/2} W and the Cholesky factor of M = I + W~^T W~."""
  wt = w / jnp.sqrt(psi)[:, None]
  m = jnp.eye(w.shape[1], dtype=w.dtype) + wt.T @ wt
  return wt, jnp.linalg.cholesky(m)


def posterior(mu, w, psi, x):
  """Posterior of z given x under x = W z + mu + noise, z ~ N(0, I): (mean [B, k], cov [k, k])."""
  psi = jnp.broadcast_to(psi, mu.shape)
  wt, chol = _whitened(w, psi)
  d = (x - mu) / jnp.sqrt(psi)
  mean = jax.scipy.linalg.cho_solve((chol, True), wt.T @ d.T).T
  cov = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(w.shape[1], dtype=w.dtype))
  return mean, cov


def mahalanobis_and_logdet(mu, w, psi, x):
  """(x - mu)^T C^{-1} (x - mu) per row, and log|C|.

  With z the posterior mean, d^T C^{-1} d = |d - W~ z|^2 + |z|^2 in whitened
  units: a sum of squares, free of the cancellation in |d|^2 - |L^-1 W~^T d|^2.
  """
  psi = jnp.broadcast_to(psi, mu.shape)
  wt, chol = _whitened(w, psi)
  d = (x - mu) / jnp.sqrt(psi)
  z = jax.scipy.linalg.cho_solve((chol, True), wt.T @ d.T).T
  maha = jnp.sum(jnp.square(d - z @ wt.T), axis=-1) + jnp.sum(jnp.square(z), axis=-1)
  logdet = jnp.sum(jnp.log(psi)) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
  return maha, logdet


def log_prob(mu, w, psi, x):
  """log N(x; mu, W W^T + diag(psi)) per row, in nats."""
  maha, logdet = mahalanobis_and_logdet(mu, w, psi, x)
  return -0.5 * (mu.shape[-1] * math.log(2 * math.pi) + logdet + maha)


def mean_log_likelihood(mu, w, psi, mean, cov):
  """Average log-likelihood of a data set given only its mean and (biased) covariance.

  Uses tr(C^{-1} S) = tr(S~) - tr(M^{-1} W~^T S~ W~) with S~ whitened by psi.
  """
  dim = mu.shape[-1]
  psi = jnp.broadcast_to(psi, mu.shape)
  wt, chol = _whitened(w, psi)
  scale = 1.0 / jnp.sqrt(psi)
  s = cov * scale[:, None] * scale[None, :]
  a = jax.scipy.linalg.solve_triangular(chol, wt.T @ s @ wt, lower=True)
  a = jax.scipy.linalg.solve_triangular(chol, a.T, lower=True)
  trace = jnp.trace(s) - jnp.trace(a)
  maha_mean, logdet = mahalanobis_and_logdet(mu, w, psi, mean[None])
  return -0.5 * (dim * math.log(2 * math.pi) + logdet + trace + maha_mean[0])


def sample(mu, w, psi, rng, n, scale=None):
  """n draws of W z + mu + sqrt(psi) eps; `scale` [n] multiplies z and eps (scale mixtures)."""
  kz, ke = jax.random.split(rng)
  z = jax.random.normal(kz, (n, w.shape[1]), w.dtype)
  eps = jax.random.normal(ke, (n, mu.shape[-1]), w.dtype) * jnp.sqrt(psi)
  noise = z @ w.T + eps
  if scale is not None:
    noise = noise * scale[:, None]
  return mu + noise


def covariance(w, psi):
  """The dense D x D covariance W W^T + diag(psi) (for tests and small D)."""
  return w @ w.T + jnp.diag(jnp.broadcast_to(psi, w.shape[:1]))


def moments(x):
  """Mean and biased (1/N) covariance of the rows of x: the mean, then one pass for the covariance.

  Each block of rows is centred in cache before its product (no cancellation in float32, no centred
  copy of x in memory). The covariance is symmetric, so only its upper band rows are multiplied:
  band J is (x - mean)[:, J]^T (x - mean)[:, s_J:], which skips about 40% of the dense product.
  """
  n, dim = x.shape
  mean = jnp.mean(x, axis=0)
  column_bands = blocked.bands(dim, GRAM_BAND)

  def add(acc, rows):
    d = rows - mean
    return [a + blocked.over_rows(d[:, s:e], d[:, s:]) for a, (s, e) in zip(acc, column_bands)]

  acc = blocked.fold_rows(x, GRAM_ROWS, add, [jnp.zeros((e - s, dim - s), x.dtype) for s, e in column_bands])
  return mean, blocked.symmetric_from_bands(acc, dim, GRAM_BAND) / n
