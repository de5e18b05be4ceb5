"""Student-t probabilistic PCA: PPCA whose latent and noise share a Gamma scale.

x = W z + mu + eps with z ~ N(0, I/u), eps ~ N(0, sigma^2 I/u), u ~ Gamma(nu/2, nu/2),
so x is multivariate t with nu degrees of freedom around mu with scale
C = W W^T + sigma^2 I. EM treats u as latent: a point far from the subspace
gets a small weight E[u | x] = (nu + D) / (nu + delta(x)), so gross outliers
barely move mu and W. Given the weights, the M-step is the closed-form PPCA of
the weighted covariance, so every step increases the marginal likelihood.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

from jgen.families.classical import lowrank_gaussian as lrg
from jgen.families.classical import ppca


class RobustPPCAParams(NamedTuple):
  mu: jax.Array  # [D]
  w: jax.Array  # [D, k]
  sigma2: jax.Array  # []
  nu: jax.Array  # [] degrees of freedom


def init(x, k, nu=5.0):
  """Starts from the Gaussian PPCA fit."""
  p = ppca.fit(x, k)
  return RobustPPCAParams(p.mu, p.w, p.sigma2, jnp.asarray(nu, x.dtype))


def _noise(params):
  return jnp.broadcast_to(params.sigma2, params.mu.shape)


def log_prob(params, x):
  """Multivariate-t log density per row, in nats."""
  dim = x.shape[-1]
  nu = params.nu
  maha, logdet = lrg.mahalanobis_and_logdet(params.mu, params.w, _noise(params), x)
  return (gammaln(0.5 * (nu + dim)) - gammaln(0.5 * nu) - 0.5 * dim * jnp.log(nu * math.pi)
          - 0.5 * logdet - 0.5 * (nu + dim) * jnp.log1p(maha / nu))


def expected_scales(params, x):
  """E[u | x] and E[log u | x]: the posterior of u is Gamma((nu + D)/2, (nu + delta)/2)."""
  dim = x.shape[-1]
  maha, _ = lrg.mahalanobis_and_logdet(params.mu, params.w, _noise(params), x)
  shape, rate = 0.5 * (params.nu + dim), 0.5 * (params.nu + maha)
  return shape / rate, digamma(shape) - jnp.log(rate)


def _solve_nu(mean_log_u_minus_u, iters=60):
  """Root of log(nu/2) + 1 - digamma(nu/2) + c = 0 by bisection on log nu (the left side decreases)."""
  def f(log_nu):
    half = 0.5 * jnp.exp(log_nu)
    return jnp.log(half) + 1.0 - digamma(half) + mean_log_u_minus_u

  def body(_, bounds):
    lo, hi = bounds
    mid = 0.5 * (lo + hi)
    positive = f(mid) > 0
    return jnp.where(positive, mid, lo), jnp.where(positive, hi, mid)

  lo, hi = jax.lax.fori_loop(0, iters, body, (jnp.log(1e-2), jnp.log(1e4)))
  return jnp.exp(0.5 * (lo + hi))


def em_step(params, x, learn_nu=True):
  """One EM update on the rows of x; nu is re-estimated when `learn_nu`."""
  k = params.w.shape[1]
  u, log_u = expected_scales(params, x)
  mu = jnp.sum(u[:, None] * x, axis=0) / jnp.sum(u)
  d = x - mu
  weighted_cov = (d * u[:, None]).T @ d / x.shape[0]
  p = ppca.closed_form(mu, weighted_cov, k)
  nu = _solve_nu(jnp.mean(log_u - u)).astype(x.dtype) if learn_nu else params.nu
  return RobustPPCAParams(mu, p.w, p.sigma2, nu)


def sample(params, rng, n):
  ku, kx = jax.random.split(rng)
  u = jax.random.gamma(ku, 0.5 * params.nu, (n,), params.w.dtype) / (0.5 * params.nu)
  return lrg.sample(params.mu, params.w, _noise(params), kx, n, scale=1.0 / jnp.sqrt(u))


def encode(params, x):
  """Posterior mean [B, k] and covariance [B, k, k] of z given x (wider for outlying x)."""
  dim = x.shape[-1]
  mean, cov = lrg.posterior(params.mu, params.w, _noise(params), x)
  maha, _ = lrg.mahalanobis_and_logdet(params.mu, params.w, _noise(params), x)
  inv_u = (params.nu + maha) / (params.nu + dim - 2.0)  # E[1/u | x]
  return mean, inv_u[:, None, None] * cov


def decode(params, z):
  return z @ params.w.T + params.mu


def covariance(params):
  """Covariance of x: nu / (nu - 2) times the scale matrix (nu > 2)."""
  return params.nu / (params.nu - 2.0) * lrg.covariance(params.w, _noise(params))
