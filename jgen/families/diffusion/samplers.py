"""Reverse-process samplers as `lax.scan` loops over timesteps.

Both take `predict(x_t, t) -> (eps, x0)`, the denoiser's noise and clean-data
estimates at integer timesteps t [B] (guidance and clipping already applied),
and the starting noise x_T, so that a run is a pure function of its inputs.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jgen.families.diffusion.schedules import Schedule, _bcast, q_posterior, reverse_log_variance


def ddpm_step(sched: Schedule, xt, t, x0, noise, variance: str = "small"):
  """Ancestral step x_t -> x_{t-1} ~ N(mu~(x0, x_t), sigma_t^2); at t = 0 it returns the mean."""
  mean, _, _ = q_posterior(sched, x0, xt, t)
  std = _bcast(jnp.exp(0.5 * reverse_log_variance(sched, t, variance)), xt)
  return mean + jnp.where(_bcast(t, xt) > 0, std, 0.0) * noise


def ddpm_sample(predict, sched: Schedule, x_T, rng, *, variance: str = "small"):
  """Ho et al.'s sampler: all T steps from x_T to x_0."""
  b = x_T.shape[0]

  def body(x, inputs):
    t, key = inputs
    t_vec = jnp.full((b,), t, jnp.int32)
    _, x0 = predict(x, t_vec)
    return ddpm_step(sched, x, t_vec, x0, jax.random.normal(key, x.shape, x.dtype), variance), None

  ts = jnp.arange(sched.num_steps - 1, -1, -1, dtype=jnp.int32)
  x, _ = jax.lax.scan(body, x_T, (ts, jax.random.split(rng, sched.num_steps)))
  return x


def ddim_timesteps(num_steps: int, steps: int) -> np.ndarray:
  """`steps` increasing timesteps from 0 to T-1, evenly spread (both ends included)."""
  if not 1 <= steps <= num_steps:
    raise ValueError(f"DDIM steps must be in [1, {num_steps}], got {steps}")
  if steps == 1:
    return np.array([num_steps - 1])
  return np.unique(np.round(np.linspace(0, num_steps - 1, steps)).astype(np.int32))


def ddim_step(sched: Schedule, xt, t, t_prev, eps, x0, noise, eta):
  """Song et al.'s generalized step x_t -> x_{t_prev} (t_prev = -1: the clean data).

  sigma = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev); eta = 0 is
  deterministic, eta = 1 with t_prev = t - 1 is the ancestral step with beta-tilde variance.
  """
  abar_t = _bcast(sched.alphas_cumprod[t], xt)
  abar_prev = _bcast(jnp.where(t_prev >= 0, sched.alphas_cumprod[jnp.maximum(t_prev, 0)], 1.0), xt)
  sigma = eta * jnp.sqrt((1.0 - abar_prev) / (1.0 - abar_t) * (1.0 - abar_t / abar_prev))
  direction = jnp.sqrt(jnp.maximum(1.0 - abar_prev - sigma**2, 0.0))
  return jnp.sqrt(abar_prev) * x0 + direction * eps + sigma * noise


def ddim_sample(predict, sched: Schedule, x_T, rng, *, steps: int = 50, eta: float = 0.0):
  """DDIM over `steps` evenly spread timesteps; eta = 0 draws no randomness after x_T."""
  b = x_T.shape[0]
  ts = ddim_timesteps(sched.num_steps, steps)
  prev = np.append(-1, ts[:-1]).astype(np.int32)

  def body(x, inputs):
    t, t_prev, key = inputs
    t_vec, prev_vec = jnp.full((b,), t, jnp.int32), jnp.full((b,), t_prev, jnp.int32)
    eps, x0 = predict(x, t_vec)
    noise = jax.random.normal(key, x.shape, x.dtype)
    return ddim_step(sched, x, t_vec, prev_vec, eps, x0, noise, eta), None

  xs = (jnp.asarray(ts[::-1]), jnp.asarray(prev[::-1]), jax.random.split(rng, len(ts)))
  x, _ = jax.lax.scan(body, x_T, xs)
  return x
