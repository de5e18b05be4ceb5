"""Bayesian Gaussian mixture by variational inference (Bishop, PRML 10.2).

Priors: a Dirichlet(alpha0) on the weights, or its stick-breaking
Dirichlet-process truncation (v_k ~ Beta(1, gamma0)); and a Normal-Wishart on
each component: Lambda_k ~ W(W0, nu0), mu_k | Lambda_k ~ N(m0, (beta0 Lambda_k)^-1).
The posterior factorises as q(Z) q(pi) prod_k q(mu_k, Lambda_k); coordinate
ascent alternates responsibilities and conjugate updates, and the evidence
lower bound (ELBO) never decreases. With a small concentration, components the
data do not need keep only their prior counts, so their weights go to ~0.

Wishart scales are stored inverted (`inv_scale` = W_k^{-1}, like the prior's
`covariance_prior` = W0^{-1}), so E[Lambda_k]^{-1} = inv_scale / nu.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import betaln, digamma, gammaln, multigammaln


class Prior(NamedTuple):
  concentration: jax.Array  # alpha0 (Dirichlet) or gamma0 (stick-breaking)
  mean: jax.Array  # m0 [D]
  mean_precision: jax.Array  # beta0
  dof: jax.Array  # nu0 > D - 1
  covariance: jax.Array  # W0^{-1} [D, D]


class Posterior(NamedTuple):
  concentration: jax.Array  # alpha [K] (Dirichlet) or [2, K] Beta parameters of the sticks
  means: jax.Array  # m_k [K, D]
  mean_precision: jax.Array  # beta_k [K]
  dof: jax.Array  # nu_k [K]
  inv_scale: jax.Array  # W_k^{-1} [K, D, D]


def default_prior(x, k, concentration=None):
  """The usual data-dependent defaults: m0 the data mean, W0^{-1} its covariance, nu0 = D, beta0 = 1."""
  dim = x.shape[1]
  conc = 1.0 / k if concentration is None else concentration
  cov = jnp.atleast_2d(jnp.cov(x.T))
  return Prior(jnp.asarray(conc, x.dtype), jnp.mean(x, axis=0), jnp.asarray(1.0, x.dtype),
               jnp.asarray(float(dim), x.dtype), cov)


def _stats(x, resp, reg_covar):
  nk = jnp.sum(resp, axis=0) + 10 * jnp.finfo(resp.dtype).eps
  xbar = resp.T @ x / nk[:, None]
  d = x[:, None, :] - xbar[None]
  s = jnp.einsum("nk,nkd,nke->kde", resp, d, d) / nk[:, None, None]
  return nk, xbar, s + reg_covar * jnp.eye(x.shape[1], dtype=x.dtype)


def m_step(prior, x, resp, dirichlet_process=False, reg_covar=0.0):
  """Conjugate updates of q(pi) and q(mu, Lambda) from responsibilities [N, K]."""
  nk, xbar, s = _stats(x, resp, reg_covar)
  if dirichlet_process:
    tail = jnp.concatenate([jnp.cumsum(nk[::-1])[-2::-1], jnp.zeros((1,), nk.dtype)])
    conc = jnp.stack([1.0 + nk, prior.concentration + tail])
  else:
    conc = prior.concentration + nk
  beta = prior.mean_precision + nk
  means = (prior.mean_precision * prior.mean + nk[:, None] * xbar) / beta[:, None]
  diff = xbar - prior.mean
  inv_scale = (prior.covariance + nk[:, None, None] * s
               + (prior.mean_precision * nk / beta)[:, None, None] * diff[:, :, None] * diff[:, None, :])
  return Posterior(conc, means, beta, prior.dof + nk, inv_scale)


def expected_log_weights(post):
  """E[log pi_k] under q(pi)."""
  conc = post.concentration
  if conc.ndim == 2:
    total = digamma(conc[0] + conc[1])
    log_v, log_1mv = digamma(conc[0]) - total, digamma(conc[1]) - total
    return log_v + jnp.concatenate([jnp.zeros((1,), conc.dtype), jnp.cumsum(log_1mv)[:-1]])
  return digamma(conc) - digamma(jnp.sum(conc))


def expected_weights(post):
  """E[pi_k]: the weights reported and used for the predictive.

  Truncated stick-breaking leaves the mass past the last stick unassigned; it
  is spread over the K components by renormalising.
  """
  conc = post.concentration
  if conc.ndim == 2:
    v = conc[0] / (conc[0] + conc[1])
    w = v * jnp.concatenate([jnp.ones((1,), conc.dtype), jnp.cumprod(1.0 - v)[:-1]])
    return w / jnp.sum(w)
  return conc / jnp.sum(conc)


def _scale_cholesky(post):
  """Lower Cholesky factors of W_k^{-1}."""
  return jnp.linalg.cholesky(post.inv_scale)


def expected_log_det_precision(post):
  """E[log |Lambda_k|] = sum_i psi((nu + 1 - i)/2) + D log 2 + log |W_k|."""
  dim = post.means.shape[1]
  chol = _scale_cholesky(post)
  log_det_w = -2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
  i = jnp.arange(dim, dtype=post.dof.dtype)
  return jnp.sum(digamma(0.5 * (post.dof[:, None] - i)), axis=1) + dim * math.log(2.0) + log_det_w


def _quad(chol, d):
  """(d_k)^T W_k d_k for d [..., K, D] via the Cholesky factors of W_k^{-1}."""
  y = jax.vmap(lambda c, v: jax.scipy.linalg.solve_triangular(c, v.T, lower=True).T, in_axes=(0, -2), out_axes=-2)(chol, d)
  return jnp.sum(jnp.square(y), axis=-1)


def e_step(post, x):
  """Responsibilities [N, K] and the unnormalised log rho [N, K]."""
  dim = x.shape[1]
  chol = _scale_cholesky(post)
  maha = dim / post.mean_precision + post.dof * _quad(chol, x[:, None, :] - post.means[None])
  log_rho = (expected_log_weights(post) + 0.5 * expected_log_det_precision(post)
             - 0.5 * dim * math.log(2 * math.pi) - 0.5 * maha)
  return jax.nn.softmax(log_rho, axis=1), log_rho


def _log_wishart_norm(inv_scale_chol, dof, dim):
  """log B(W, nu), the Wishart normaliser, from the Cholesky factor of W^{-1}."""
  log_det_w = -2.0 * jnp.sum(jnp.log(jnp.diagonal(inv_scale_chol, axis1=-2, axis2=-1)), axis=-1)
  return -0.5 * dof * log_det_w - 0.5 * dof * dim * math.log(2.0) - multigammaln(0.5 * dof, dim)


def elbo(prior, post, x, resp, reg_covar=0.0):
  """The evidence lower bound (PRML 10.70-10.77) at responsibilities `resp` and posterior `post`."""
  dim = x.shape[1]
  k = post.means.shape[0]
  nk, xbar, s = _stats(x, resp, reg_covar)
  chol = _scale_cholesky(post)
  w = jnp.linalg.inv(post.inv_scale)
  log_lam = expected_log_det_precision(post)
  log_pi = expected_log_weights(post)
  beta, nu = post.mean_precision, post.dof

  # E[log p(X | Z, mu, Lambda)]
  fit = 0.5 * jnp.sum(nk * (log_lam - dim / beta - nu * jnp.einsum("kde,ked->k", s, w)
                             - nu * _quad(chol, xbar - post.means) - dim * math.log(2 * math.pi)))
  # E[log p(Z | pi)] - E[log q(Z)]
  assign = jnp.sum(nk * log_pi) - jnp.sum(jnp.where(resp > 0, resp * jnp.log(jnp.where(resp > 0, resp, 1.0)), 0.0))
  # E[log p(pi)] - E[log q(pi)]
  conc = post.concentration
  if conc.ndim == 2:
    total = digamma(conc[0] + conc[1])
    log_v, log_1mv = digamma(conc[0]) - total, digamma(conc[1]) - total
    g0 = prior.concentration
    weights = (jnp.sum(jnp.log(g0) + (g0 - 1.0) * log_1mv)
               - jnp.sum(-betaln(conc[0], conc[1]) + (conc[0] - 1.0) * log_v + (conc[1] - 1.0) * log_1mv))
  else:
    a0 = prior.concentration
    log_c0 = gammaln(k * a0) - k * gammaln(a0)
    log_c = gammaln(jnp.sum(conc)) - jnp.sum(gammaln(conc))
    weights = log_c0 + (a0 - 1.0) * jnp.sum(log_pi) - (jnp.sum((conc - 1.0) * log_pi) + log_c)
  # E[log p(mu, Lambda)]
  b0, nu0 = prior.mean_precision, prior.dof
  prior_chol = jnp.linalg.cholesky(prior.covariance)
  p_mu_lam = (0.5 * jnp.sum(dim * jnp.log(b0 / (2 * math.pi)) + log_lam - dim * b0 / beta
                            - b0 * nu * _quad(chol, post.means - prior.mean))
              + k * _log_wishart_norm(prior_chol, nu0, dim) + 0.5 * (nu0 - dim - 1.0) * jnp.sum(log_lam)
              - 0.5 * jnp.sum(nu * jnp.einsum("de,ked->k", prior.covariance, w)))
  # E[log q(mu, Lambda)]
  entropy_lam = -_log_wishart_norm(chol, nu, dim) - 0.5 * (nu - dim - 1.0) * log_lam + 0.5 * nu * dim
  q_mu_lam = jnp.sum(0.5 * log_lam + 0.5 * dim * jnp.log(beta / (2 * math.pi)) - 0.5 * dim - entropy_lam)
  return fit + assign + weights + p_mu_lam - q_mu_lam


def step(prior, post, x, dirichlet_process=False, reg_covar=0.0):
  """One coordinate-ascent sweep: responsibilities, then q(pi, mu, Lambda); returns (post, ELBO)."""
  resp, _ = e_step(post, x)
  new = m_step(prior, x, resp, dirichlet_process, reg_covar)
  return new, elbo(prior, new, x, resp, reg_covar)


def predictive_params(post):
  """The posterior predictive is a mixture of Student-t's (PRML 10.81): (weights, means, scales [K, D, D], dof)."""
  dim = post.means.shape[1]
  dof = post.dof + 1.0 - dim
  scale = ((1.0 + post.mean_precision) / (dof * post.mean_precision))[:, None, None] * post.inv_scale
  return expected_weights(post), post.means, scale, dof


def log_prob(post, x):
  """log of the posterior predictive density per row, in nats."""
  dim = x.shape[1]
  w, means, scale, dof = predictive_params(post)
  chol = jnp.linalg.cholesky(scale)
  d = x[:, None, :] - means[None]
  y = jax.vmap(lambda c, v: jax.scipy.linalg.solve_triangular(c, v.T, lower=True).T, in_axes=(0, 1), out_axes=1)(chol, d)
  maha = jnp.sum(jnp.square(y), axis=-1)
  logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
  log_t = (gammaln(0.5 * (dof + dim)) - gammaln(0.5 * dof) - 0.5 * dim * jnp.log(dof * math.pi)
           - 0.5 * logdet - 0.5 * (dof + dim) * jnp.log1p(maha / dof))
  return jax.nn.logsumexp(jnp.log(w) + log_t, axis=1)


def sample(post, rng, n):
  """n draws (and their components) from the posterior predictive."""
  w, means, scale, dof = predictive_params(post)
  kc, kz, ku = jax.random.split(rng, 3)
  comp = jax.random.categorical(kc, jnp.log(w), shape=(n,))
  eps = jax.random.normal(kz, (n, means.shape[1]), means.dtype)
  u = jax.random.gamma(ku, 0.5 * dof[comp], dtype=means.dtype) / (0.5 * dof[comp])
  noise = jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(scale)[comp], eps) / jnp.sqrt(u)[:, None]
  return means[comp] + noise, comp


def predict(post, x):
  return jnp.argmax(e_step(post, x)[1], axis=1)


def mean_and_covariance(post):
  """Mean and covariance of the predictive (needs every dof > 2)."""
  w, means, scale, dof = predictive_params(post)
  cov = (dof / (dof - 2.0))[:, None, None] * scale
  mean = w @ means
  d = means - mean
  return mean, jnp.einsum("k,kde->de", w, cov + d[:, :, None] * d[:, None, :])
