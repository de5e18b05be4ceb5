"""The forward process: schedules, q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0), eps/v conversions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.families.diffusion import predictions
from jgen.families.diffusion.schedules import (cosine_schedule, linear_schedule, make_schedule, q_posterior,
                                               q_sample, reverse_log_variance)


def test_linear_schedule_end_points_and_monotone():
  sched = linear_schedule(1000)
  abar = np.asarray(sched.alphas_cumprod, np.float64)
  np.testing.assert_allclose(np.asarray(sched.betas)[[0, -1]], [1e-4, 0.02], rtol=1e-5)
  np.testing.assert_allclose(abar[0], 1 - 1e-4, rtol=1e-6)
  # prod(1 - beta_t) over the linear ramp: ~4.0e-5 (Ho et al.).
  expected_end = np.prod(1 - np.linspace(1e-4, 0.02, 1000))
  np.testing.assert_allclose(abar[-1], expected_end, rtol=1e-3)
  assert 3e-5 < abar[-1] < 5e-5
  assert np.all(np.diff(abar) < 0)


def test_cosine_schedule_end_points_and_monotone():
  sched = cosine_schedule(1000)
  abar = np.asarray(sched.alphas_cumprod, np.float64)
  s = 0.008
  f = lambda u: np.cos((u + s) / (1 + s) * np.pi / 2) ** 2
  # Away from the clipped end the product of (1 - beta) is the closed form f(t/T) / f(0).
  t = np.array([1, 100, 500, 900])
  np.testing.assert_allclose(abar[t - 1], f(t / 1000) / f(0), rtol=1e-4)
  assert abar[0] > 0.9999 and abar[-1] < 1e-6
  assert np.all(np.diff(abar) < 0)
  assert float(jnp.max(sched.betas)) <= 0.999 + 1e-6


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_q_sample_has_closed_form_moments(name):
  sched = make_schedule(name, 1000)
  n = 20_000
  x0 = jnp.full((n, 1), 0.7)
  for t in [0, 250, 600, 999]:
    t_vec = jnp.full((n,), t)
    xt = q_sample(sched, x0, t_vec, jax.random.normal(jax.random.key(t), x0.shape))
    abar = float(sched.alphas_cumprod[t])
    # Standard errors: sqrt(var / n) ~ 0.007 for the mean; tolerances are ~5 of them.
    np.testing.assert_allclose(float(xt.mean()), np.sqrt(abar) * 0.7, atol=0.035 * np.sqrt(1 - abar) + 1e-4)
    np.testing.assert_allclose(float(xt.var()), 1 - abar, rtol=0.05, atol=1e-6)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_posterior_is_gaussian_conditioning_of_the_joint(name):
  """q(x_{t-1} | x_t, x_0) from the joint of (x_{t-1}, x_t) given x_0, computed independently in float64."""
  sched = make_schedule(name, 1000)
  betas = np.asarray(sched.betas, np.float64)
  abar = np.cumprod(1 - betas)
  x0, xt = 0.3, -0.8
  for t in [1, 10, 500, 999]:
    a_prev, a_t = abar[t - 1], abar[t]
    # x_{t-1} = sqrt(a_prev) x0 + sqrt(1-a_prev) e1; x_t = sqrt(1-beta_t) x_{t-1} + sqrt(beta_t) e2.
    var_prev, cov = 1 - a_prev, np.sqrt(1 - betas[t]) * (1 - a_prev)
    var_t = 1 - a_t
    mean = np.sqrt(a_prev) * x0 + cov / var_t * (xt - np.sqrt(a_t) * x0)
    var = var_prev - cov**2 / var_t
    m, v, logv = q_posterior(sched, jnp.array([x0]), jnp.array([xt]), jnp.array([t]))
    np.testing.assert_allclose(float(m[0]), mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(v[0]), var, rtol=1e-4)
    np.testing.assert_allclose(float(logv[0]), np.log(var), rtol=1e-5, atol=1e-6)
  # Index 0 maps x_1 to the data: its mean is x_0 itself.
  m, v, _ = q_posterior(sched, jnp.array([x0]), jnp.array([xt]), jnp.array([0]))
  np.testing.assert_allclose([float(m[0]), float(v[0])], [x0, 0.0], atol=1e-6)


def test_reverse_variances():
  sched = linear_schedule(1000)
  t = jnp.array([0, 1, 500])
  np.testing.assert_allclose(jnp.exp(reverse_log_variance(sched, t, "large"))[1:], sched.betas[t[1:]], rtol=1e-5)
  np.testing.assert_allclose(jnp.exp(reverse_log_variance(sched, t, "small"))[1:], sched.posterior_variance[t[1:]],
                             rtol=1e-5)
  for kind in ["small", "large"]:
    np.testing.assert_allclose(jnp.exp(reverse_log_variance(sched, t, kind))[0], sched.posterior_variance[1], rtol=1e-5)


@pytest.mark.parametrize("kind", ["eps", "v"])
def test_prediction_conversions_invert_exactly(kind):
  sched = cosine_schedule(1000)
  k1, k2 = jax.random.split(jax.random.key(0))
  x0 = jax.random.uniform(k1, (5, 3), minval=-1, maxval=1)
  eps = jax.random.normal(k2, (5, 3))
  t = jnp.array([0, 10, 400, 800, 999])
  xt = q_sample(sched, x0, t, eps)
  out = predictions.target(sched, kind, x0, eps, t)
  eps_hat, x0_hat = predictions.to_eps_x0(sched, kind, xt, t, out)
  np.testing.assert_allclose(eps_hat, eps, atol=1e-3)
  np.testing.assert_allclose(x0_hat[1:4], x0[1:4], atol=1e-3)
  # Clipping x_0 keeps x_t = a x_0 + b eps true for the returned pair.
  eps_c, x0_c = predictions.to_eps_x0(sched, kind, xt, t, out + 3.0, clip=(-1.0, 1.0))
  a = jnp.sqrt(sched.alphas_cumprod[t])[:, None]
  assert float(jnp.abs(x0_c).max()) <= 1.0
  np.testing.assert_allclose(a * x0_c + jnp.sqrt(1 - a**2) * eps_c, xt, atol=1e-4)
