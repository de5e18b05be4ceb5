"""Gaussian mixtures with full, diagonal or spherical covariances, fitted by EM.

Parameters are (weights [K], means [K, D], covariances): [K, D, D] for "full",
[K, D] for "diag", [K] for "spherical". The E-step works through the upper
Cholesky factor of each precision, so the Mahalanobis distances of all
components come from one [B, D] x [D, K*D] matrix product per block of rows,
and the same pass accumulates the weighted sums the M-step needs. Covariances get
`reg_covar` added to their diagonal, which keeps collapsing components finite.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

COVARIANCE_TYPES = ("full", "diag", "spherical")


class GMMParams(NamedTuple):
  weights: jax.Array
  means: jax.Array
  covariances: jax.Array


def covariance_type(params) -> str:
  return COVARIANCE_TYPES[3 - params.covariances.ndim]


def precision_cholesky(params):
  """Upper factors U_k with U_k U_k^T = Sigma_k^{-1} (full), or 1/sqrt(variances)."""
  cov = params.covariances
  if cov.ndim == 3:
    chol = jnp.linalg.cholesky(cov)
    eye = jnp.broadcast_to(jnp.eye(cov.shape[-1], dtype=cov.dtype), cov.shape)
    return jnp.swapaxes(jax.scipy.linalg.solve_triangular(chol, eye, lower=True), -1, -2)
  return jax.lax.rsqrt(cov)


def component_log_probs(params, x):
  """log N(x_n; mu_k, Sigma_k) as [N, K]."""
  n, dim = x.shape
  means = params.means
  k = means.shape[0]
  prec = precision_cholesky(params)
  if prec.ndim == 3:
    y = (x @ jnp.transpose(prec, (1, 0, 2)).reshape(dim, k * dim)).reshape(n, k, dim)
    y = y - jnp.einsum("kd,kde->ke", means, prec)[None]
    maha = jnp.sum(jnp.square(y), axis=-1)
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(prec, axis1=-2, axis2=-1)), axis=-1)
  elif prec.ndim == 2:
    p = jnp.square(prec)
    maha = (jnp.square(x) @ p.T - 2.0 * x @ (means * p).T + jnp.sum(jnp.square(means) * p, axis=1)[None])
    half_logdet = jnp.sum(jnp.log(prec), axis=-1)
  else:
    p = jnp.square(prec)
    maha = (jnp.sum(jnp.square(x), axis=1)[:, None] - 2.0 * x @ means.T
            + jnp.sum(jnp.square(means), axis=1)[None]) * p[None]
    half_logdet = dim * jnp.log(prec)
  return -0.5 * (dim * math.log(2 * math.pi) + maha) + half_logdet[None]


def joint_log_probs(params, x):
  """log pi_k + log N(x_n; mu_k, Sigma_k) as [N, K]."""
  return jnp.log(params.weights)[None] + component_log_probs(params, x)


def log_prob(params, x):
  """log p(x_n) in nats, [N]."""
  return jax.nn.logsumexp(joint_log_probs(params, x), axis=1)


def e_step(params, x):
  """(mean log-likelihood, responsibilities [N, K])."""
  joint = joint_log_probs(params, x)
  norm = jax.nn.logsumexp(joint, axis=1)
  return jnp.mean(norm), jnp.exp(joint - norm[:, None])


def _weighted_stats(x, resp, cov_type):
  """(N_k, sum_n r_nk x_n, second moments): sum r x x^T [K, D, D] for "full", sum r x^2 [K, D] otherwise."""
  second = jnp.einsum("nk,nd,ne->kde", resp, x, x) if cov_type == "full" else resp.T @ jnp.square(x)
  return jnp.sum(resp, axis=0), resp.T @ x, second


def sufficient_statistics(params, x, block_size=1024):
  """E-step and M-step statistics in one pass over x, block by block.

  Each block's responsibilities and outer products stay in cache instead of
  [N, K, D] arrays going through memory. Returns (sum of log p(x_n), stats).
  """
  n, dim = x.shape
  blocks = -(-n // block_size)
  pad = blocks * block_size - n
  xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(blocks, block_size, dim)
  mask = (jnp.arange(blocks * block_size) < n).astype(x.dtype).reshape(blocks, block_size)
  cov_type = covariance_type(params)

  def body(acc, block):
    xc, m = block
    joint = joint_log_probs(params, xc)
    norm = jax.nn.logsumexp(joint, axis=1)
    resp = jnp.exp(joint - norm[:, None]) * m[:, None]
    ll, stats = acc
    new = _weighted_stats(xc, resp, cov_type)
    return (ll + jnp.sum(norm * m), jax.tree.map(jnp.add, stats, new)), None

  zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(lambda: _weighted_stats(xb[0], joint_log_probs(params, xb[0]),
                                                                                cov_type)))
  (ll, stats), _ = jax.lax.scan(body, (jnp.zeros((), x.dtype), zeros), (xb, mask))
  return ll, stats


def m_step_from_stats(stats, cov_type, reg_covar=1e-6):
  """Maximum-likelihood weights, means and covariances from weighted sums."""
  nk, sum_x, second = stats
  dim = sum_x.shape[1]
  # A tiny floor keeps an empty component's mean finite.
  nk = nk + 10 * jnp.finfo(nk.dtype).eps
  means = sum_x / nk[:, None]
  if cov_type == "full":
    cov = second / nk[:, None, None] - means[:, :, None] * means[:, None, :]
    cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2)) + reg_covar * jnp.eye(dim, dtype=means.dtype)
  else:
    var = second / nk[:, None] - jnp.square(means) + reg_covar
    cov = var if cov_type == "diag" else jnp.mean(var, axis=1)
  return GMMParams(nk / jnp.sum(nk), means, cov)


def m_step(x, resp, cov_type, reg_covar=1e-6):
  """Maximum-likelihood weights, means and covariances given responsibilities [N, K]."""
  return m_step_from_stats(_weighted_stats(x, resp, cov_type), cov_type, reg_covar)


def em_step(params, x, reg_covar=1e-6, block_size=1024):
  """One EM iteration; returns the new parameters and the mean log-likelihood of the old ones."""
  ll, stats = sufficient_statistics(params, x, block_size)
  return m_step_from_stats(stats, covariance_type(params), reg_covar), ll / x.shape[0]


def predict(params, x):
  """The most probable component of each row."""
  return jnp.argmax(joint_log_probs(params, x), axis=1)


def predict_proba(params, x):
  return e_step(params, x)[1]


def sample(params, rng, n):
  """n draws (and their components) from the mixture."""
  kc, kz = jax.random.split(rng)
  comp = jax.random.categorical(kc, jnp.log(params.weights), shape=(n,))
  dim = params.means.shape[1]
  eps = jax.random.normal(kz, (n, dim), params.means.dtype)
  cov = params.covariances
  if cov.ndim == 3:
    noise = jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(cov)[comp], eps)
  elif cov.ndim == 2:
    noise = jnp.sqrt(cov[comp]) * eps
  else:
    noise = jnp.sqrt(cov[comp])[:, None] * eps
  return params.means[comp] + noise, comp


def mean_and_covariance(params):
  """Mean and covariance of the mixture (for moment checks)."""
  w, m = params.weights, params.means
  dim = m.shape[1]
  cov = params.covariances
  if cov.ndim == 2:
    cov = jax.vmap(jnp.diag)(cov)
  elif cov.ndim == 1:
    cov = cov[:, None, None] * jnp.eye(dim, dtype=m.dtype)
  mean = w @ m
  d = m - mean
  return mean, jnp.einsum("k,kde->de", w, cov + d[:, :, None] * d[:, None, :])


def num_params(params):
  k, dim = params.means.shape
  cov_params = {"full": k * dim * (dim + 1) // 2, "diag": k * dim, "spherical": k}[covariance_type(params)]
  return cov_params + k * dim + k - 1


def bic(params, x):
  """Bayesian information criterion (lower is better)."""
  n = x.shape[0]
  return -2.0 * jnp.sum(log_prob(params, x)) + num_params(params) * math.log(n)


def aic(params, x):
  """Akaike information criterion (lower is better)."""
  return -2.0 * jnp.sum(log_prob(params, x)) + 2.0 * num_params(params)


def outlier_scores(params, x):
  """Negative log density: the least likely points score highest."""
  return -log_prob(params, x)


def outlier_threshold(params, x, quantile=0.99):
  """The score above which a point is an outlier, so that 1 - quantile of `x` is flagged."""
  return jnp.quantile(outlier_scores(params, x), quantile)
