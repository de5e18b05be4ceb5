"""Fitting a Gaussian mixture: k-means++ starts, EM to convergence, restarts run at once.

Restarts are vmapped, so R restarts cost one batched run rather than R
sequential ones; the restart with the highest final log-likelihood is kept.
Convergence follows the usual rule: stop when the mean log-likelihood changes
by less than `tol` between iterations.
"""

import jax
import jax.numpy as jnp

from jgen.families.classical import gmm, kmeans
from jgen.train.compile_options import step_jit


def init_from_kmeans(rng, x, k, cov_type, reg_covar=1e-6, lloyd_iters=10):
  """k-means++ seeds refined by Lloyd steps, then one M-step on the hard assignment."""
  centers = kmeans.lloyd(x, kmeans.plusplus(rng, x, k), lloyd_iters)
  resp = jax.nn.one_hot(kmeans.assign(x, centers), k, dtype=x.dtype)
  return gmm.m_step(x, resp, cov_type, reg_covar)


def run_em(params, x, max_iter=100, tol=1e-3, reg_covar=1e-6):
  """EM from `params` until converged or `max_iter`; returns (params, mean log-likelihood, iterations).

  The whole loop is one `while_loop` on the device: no host round trip per iteration. The returned
  log-likelihood is that of the returned parameters.
  """
  def cond(carry):
    _, _, i, converged = carry
    return jnp.logical_and(i < max_iter, jnp.logical_not(converged))

  def body(carry):
    params, prev, i, _ = carry
    params, ll = gmm.em_step(params, x, reg_covar)
    return params, ll, i + 1, jnp.abs(ll - prev) < tol

  init = (params, jnp.asarray(-jnp.inf, x.dtype), jnp.asarray(0), jnp.asarray(False))
  params, _, n_iter, _ = jax.lax.while_loop(cond, body, init)
  return params, gmm.mean_log_likelihood(params, x), n_iter


# Compiled as the loop compiles a train step: on XLA:CPU the EM pass's products run faster without
# YNNPACK's fusions (benchmarks/README.md, "Classical fits").
@step_jit(static_argnames=("k", "cov_type", "n_init", "lloyd_iters"))
def fit(rng, x, k, cov_type="full", n_init=1, max_iter=100, tol=1e-3, reg_covar=1e-6, lloyd_iters=10):
  """Fits `n_init` restarts in parallel and keeps the best; returns (params, mean log-likelihood, iterations)."""
  starts = jax.vmap(lambda r: init_from_kmeans(r, x, k, cov_type, reg_covar, lloyd_iters))(
      jax.random.split(rng, n_init))
  params, ll, n_iter = jax.vmap(lambda p: run_em(p, x, max_iter, tol, reg_covar))(starts)
  best = jnp.argmax(jnp.where(jnp.isfinite(ll), ll, -jnp.inf))
  return jax.tree.map(lambda a: a[best], params), ll[best], n_iter[best]


@step_jit
def fit_from(params, x, max_iter=100, tol=1e-3, reg_covar=1e-6):
  """EM from given parameters (one start)."""
  return run_em(params, x, max_iter, tol, reg_covar)
