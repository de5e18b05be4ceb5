"""The variational bound on -log p(x_0) of a diffusion model (Ho et al., eq. 5).

  L = KL(q(x_T | x_0) || N(0, I))                                   prior
    + sum_{t=2..T} E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))   denoising terms
    + E_q [-log p(x_0 | x_1)]                                        decoder

in nats per example. The decoder is either a discretized Gaussian over the 256
levels of 8-bit data scaled to [-1, 1] (Ho et al.'s convention: the bound is on
a probability mass, bits/dim = L / (D ln 2)) or a Gaussian density (continuous data).

The T-1 denoising terms cost one network call each. `num_timesteps=0` sums all of
them; k > 0 gives an unbiased estimate from one random timestep in each of k
equal strata of [1, T), weighted by the stratum size.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from jgen.families.diffusion.schedules import Schedule, _bcast, q_posterior, q_sample, reverse_log_variance

LOG_2PI = float(np.log(2 * np.pi))


def gaussian_kl(mean1, logvar1, mean2, logvar2):
  """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) elementwise."""
  return 0.5 * (logvar2 - logvar1 + jnp.exp(logvar1 - logvar2) + (mean1 - mean2)**2 * jnp.exp(-logvar2) - 1.0)


def gaussian_log_density(x, mean, logvar):
  return -0.5 * (LOG_2PI + logvar + (x - mean)**2 * jnp.exp(-logvar))


def _log_normal_mass(lo, hi):
  """log(Phi(hi) - Phi(lo)) for lo < hi, evaluated in the lower tail where it is precise."""
  flip = (lo + hi) > 0
  lo, hi = jnp.where(flip, -hi, lo), jnp.where(flip, -lo, hi)
  log_hi, log_lo = norm.logcdf(hi), norm.logcdf(lo)
  # The floor guards log(0) when a bin holds a negligible share of Phi(hi).
  return log_hi + jnp.log1p(-jnp.minimum(jnp.exp(log_lo - log_hi), 1.0 - 1e-12))


def discretized_gaussian_log_likelihood(x, mean, log_scale, num_levels: int = 256):
  """log P(x) of a Gaussian discretized to `num_levels` bins on [-1, 1], elementwise.

  x holds bin centres (k / 127.5 - 1 for 8-bit data); the end bins extend to +-inf so the
  masses sum to one.
  """
  half_width = 1.0 / (num_levels - 1)
  inv_scale = jnp.exp(-log_scale)
  upper = (x + half_width - mean) * inv_scale
  lower = (x - half_width - mean) * inv_scale
  log_cdf_upper = norm.logcdf(upper)  # bin at -1: P(X < -1 + half_width)
  log_sf_lower = norm.logcdf(-lower)  # bin at +1: P(X > 1 - half_width)
  mid = _log_normal_mass(lower, upper)
  return jnp.where(x < -1.0 + half_width, log_cdf_upper,
                   jnp.where(x > 1.0 - half_width, log_sf_lower, mid))


def prior_kl(sched: Schedule, x0):
  """KL(q(x_T | x_0) || N(0, I)) summed over dimensions, [B]."""
  abar = sched.alphas_cumprod[-1]
  kl = gaussian_kl(jnp.sqrt(abar) * x0, jnp.log1p(-abar), 0.0, 0.0)
  return kl.reshape(x0.shape[0], -1).sum(-1)


def stratified_timesteps(num_steps: int, k: int, rng, batch: int):
  """(timesteps [k, B], weights [k]) for the terms t in [1, T): all of them when k = 0 or k >= T-1,
  else one per stratum drawn independently for each example (so a batch mean averages them)."""
  if k <= 0 or k >= num_steps - 1:
    ts = jnp.arange(1, num_steps, dtype=jnp.int32)
    return jnp.broadcast_to(ts[:, None], (num_steps - 1, batch)), jnp.ones((num_steps - 1,), jnp.float32)
  edges = np.round(np.linspace(1, num_steps, k + 1)).astype(np.int32)
  sizes = np.diff(edges)
  offsets = jnp.floor(jax.random.uniform(rng, (k, batch)) * sizes[:, None]).astype(jnp.int32)
  return jnp.asarray(edges[:-1])[:, None] + offsets, jnp.asarray(sizes, jnp.float32)


def variational_bound(predict, sched: Schedule, x0, rng, *, num_timesteps: int = 0, variance: str = "small",
                      decoder: str = "discretized"):
  """Per-example bound terms in nats: dict with "prior", "denoising", "decoder", "total" (each [B]).

  `predict(x_t, t) -> (eps, x0_hat)` is the model's denoiser; the model's reverse mean is
  the posterior mean at x0_hat and its variance is the fixed `variance` choice ("small",
  "large", or an array of T log-variances).
  """
  b = x0.shape[0]
  flat_sum = lambda a: a.reshape(b, -1).sum(-1)
  rng_t, rng_dec, rng_terms = jax.random.split(rng, 3)

  def model_mean_logvar(xt, t_vec):
    _, x0_hat = predict(xt, t_vec)
    mean, _, _ = q_posterior(sched, x0_hat, xt, t_vec)
    return mean, _bcast(reverse_log_variance(sched, t_vec, variance), xt)

  def term(total, inputs):
    t_vec, weight, key = inputs
    xt = q_sample(sched, x0, t_vec, jax.random.normal(key, x0.shape, x0.dtype))
    true_mean, _, true_logvar = q_posterior(sched, x0, xt, t_vec)
    mean, logvar = model_mean_logvar(xt, t_vec)
    return total + weight * flat_sum(gaussian_kl(true_mean, true_logvar, mean, logvar)), None

  ts, weights = stratified_timesteps(sched.num_steps, num_timesteps, rng_t, b)
  keys = jax.random.split(rng_terms, ts.shape[0])
  denoising, _ = jax.lax.scan(term, jnp.zeros((b,), jnp.float32), (ts, weights, keys))

  t0 = jnp.zeros((b,), jnp.int32)
  x1 = q_sample(sched, x0, t0, jax.random.normal(rng_dec, x0.shape, x0.dtype))
  mean, logvar = model_mean_logvar(x1, t0)
  if decoder == "discretized":
    log_lik = discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar)
  elif decoder == "gaussian":
    log_lik = gaussian_log_density(x0, mean, logvar)
  else:
    raise ValueError(f"unknown decoder {decoder!r}; use 'discretized' or 'gaussian'")
  dec = -flat_sum(log_lik)
  prior = prior_kl(sched, x0)
  return {"prior": prior, "denoising": denoising, "decoder": dec, "total": prior + denoising + dec}
