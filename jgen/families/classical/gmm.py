"""Gaussian mixtures with full, diagonal or spherical covariances, fitted by EM.

Parameters are (weights [K], means [K, D], covariances): [K, D, D] for "full",
[K, D] for "diag", [K] for "spherical". The E-step works through the upper
Cholesky factor of each precision, so the Mahalanobis distances of all
components come from one [N, D] x [D, K*D] matrix product; the M-step gets
all covariances from one weighted second-moment product. Covariances get
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


def m_step(x, resp, cov_type, reg_covar=1e-6):
  """Maximum-likelihood weights, means and covariances given responsibilities."""
  dim = x.shape[1]
  # A tiny floor keeps an empty component's mean finite.
  nk = jnp.sum(resp, axis=0) + 10 * jnp.finfo(resp.dtype).eps
  means = (resp.T @ x) / nk[:, None]
  if cov_type == "full":
    second = jnp.einsum("nk,nd,ne->kde", resp, x, x) / nk[:, None, None]
    cov = second - means[:, :, None] * means[:, None, :]
    cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2)) + reg_covar * jnp.eye(dim, dtype=x.dtype)
  else:
    var = (resp.T @ jnp.square(x)) / nk[:, None] - jnp.square(means) + reg_covar
    cov = var if cov_type == "diag" else jnp.mean(var, axis=1)
  return GMMParams(nk / jnp.sum(nk), means, cov)


def em_step(params, x, reg_covar=1e-6):
  """One EM iteration; returns the new parameters and the mean log-likelihood of the old ones."""
  ll, resp = e_step(params, x)
  return m_step(x, resp, covariance_type(params), reg_covar), ll


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
