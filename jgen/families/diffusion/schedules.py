"""The forward process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) and its posteriors.

Timesteps are 0-based indices: index t in [0, T) is step t+1 of Ho et al., so
`alpha_bar[0] = 1 - beta_1` and `alpha_bar[T-1]` is the noisiest level. "Index -1"
is the clean data (alpha_bar = 1).

End points: linear (Ho et al.) has alpha_bar[0] = 1 - beta_start and, for
T = 1000 with betas in [1e-4, 0.02], alpha_bar[T-1] ~ 4e-5; cosine (Nichol &
Dhariwal) follows cos^2 with offset s = 0.008, betas clipped at 0.999, and
alpha_bar[T-1] < 1e-6. Both decrease strictly.
"""

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np


@flax.struct.dataclass
class Schedule:
  """Per-timestep constants, float32 arrays of shape [T] (a pytree; index with t)."""

  betas: jax.Array
  alphas_cumprod: jax.Array
  alphas_cumprod_prev: jax.Array  # alpha_bar at t-1, with 1 at t = 0.
  posterior_variance: jax.Array  # beta-tilde_t: variance of q(x_{t-1} | x_t, x_0).
  posterior_log_variance: jax.Array  # log beta-tilde, with index 0 (where it is 0) set to index 1.
  posterior_mean_coef_x0: jax.Array
  posterior_mean_coef_xt: jax.Array

  @property
  def num_steps(self) -> int:
    return self.betas.shape[0]


def from_betas(betas) -> Schedule:
  # Constants are computed in float64 numpy and stored as float32.
  betas = np.asarray(betas, np.float64)
  abar = np.cumprod(1.0 - betas)
  abar_prev = np.append(1.0, abar[:-1])
  post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
  post_logvar = np.log(np.append(post_var[1], post_var[1:]))
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  return Schedule(
      betas=f32(betas), alphas_cumprod=f32(abar), alphas_cumprod_prev=f32(abar_prev),
      posterior_variance=f32(post_var), posterior_log_variance=f32(post_logvar),
      posterior_mean_coef_x0=f32(betas * np.sqrt(abar_prev) / (1.0 - abar)),
      posterior_mean_coef_xt=f32((1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar)))


def linear_schedule(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
  """Betas linear in t; the defaults are Ho et al.'s, scaled by 1000/T for other T."""
  scale = 1000.0 / num_steps
  return from_betas(np.linspace(scale * beta_start, scale * beta_end, num_steps))


def cosine_schedule(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
  """alpha_bar(t) = f(t)/f(0), f(t) = cos^2((t/T + s)/(1 + s) * pi/2) (Nichol & Dhariwal)."""
  f = lambda u: np.cos((u + s) / (1.0 + s) * np.pi / 2) ** 2
  u = np.arange(num_steps + 1, dtype=np.float64) / num_steps
  abar = f(u) / f(0.0)
  return from_betas(np.minimum(1.0 - abar[1:] / abar[:-1], max_beta))


def make_schedule(name: str, num_steps: int) -> Schedule:
  if name == "linear":
    return linear_schedule(num_steps)
  if name == "cosine":
    return cosine_schedule(num_steps)
  raise ValueError(f"unknown noise schedule {name!r}; use 'linear' or 'cosine'")


def _bcast(values, x):
  """values [B] -> [B, 1, ..., 1] to broadcast against x."""
  return values.reshape(values.shape + (1,) * (x.ndim - values.ndim))


def q_sample(sched: Schedule, x0, t, noise):
  """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise, for t [B]."""
  abar = _bcast(sched.alphas_cumprod[t], x0)
  return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def q_posterior(sched: Schedule, x0, xt, t):
  """Mean, variance and log-variance of q(x_{t-1} | x_t, x_0)."""
  mean = (_bcast(sched.posterior_mean_coef_x0[t], xt) * x0
          + _bcast(sched.posterior_mean_coef_xt[t], xt) * xt)
  return mean, _bcast(sched.posterior_variance[t], xt), _bcast(sched.posterior_log_variance[t], xt)


def reverse_log_variance(sched: Schedule, t, kind):
  """log variance of p(x_{t-1} | x_t): "small" = beta-tilde_t, "large" = beta_t (Ho et al.'s
  two fixed choices; at t = 0 both use beta-tilde_1, the decoder's variance), or `kind[t]`
  for an array of T log-variances."""
  if not isinstance(kind, str):
    return jnp.asarray(kind)[t]
  if kind == "small":
    return sched.posterior_log_variance[t]
  if kind == "large":
    log_large = jnp.log(jnp.append(sched.posterior_variance[1], sched.betas[1:]))
    return log_large[t]
  raise ValueError(f"unknown reverse variance {kind!r}; use 'small' or 'large'")
