"""The variational bound: its pieces against closed forms, and the whole bound against exact likelihoods."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen.families.diffusion import bound
from jgen.families.diffusion.schedules import make_schedule, reverse_log_variance
from tests.test_diffusion_samplers import MEAN, STD, optimal_predictor

GRID = np.arange(256) / 127.5 - 1.0


@pytest.mark.parametrize("mean,scale", [(0.0, 0.01), (0.99, 0.05), (-1.2, 0.3), (0.3, 2.0), (0.5, 0.002)])
def test_discretized_gaussian_is_a_distribution_over_the_256_levels(mean, scale):
  log_p = bound.discretized_gaussian_log_likelihood(jnp.asarray(GRID, jnp.float32), mean, jnp.log(scale))
  np.testing.assert_allclose(float(jnp.exp(log_p).sum()), 1.0, atol=1e-4)
  # Against the CDF differences in float64 (edge bins open to -inf / +inf).
  upper = stats.norm.cdf((GRID + 1 / 255 - mean) / scale)
  lower = stats.norm.cdf((GRID - 1 / 255 - mean) / scale)
  upper[-1], lower[0] = 1.0, 0.0
  mass = upper - lower
  big = mass > 1e-6
  np.testing.assert_allclose(np.exp(np.asarray(log_p))[big], mass[big], rtol=2e-3)


def test_gaussian_kl_against_numerical_integral():
  m1, v1, m2, v2 = 0.3, 0.5, -0.4, 1.7
  x = np.linspace(-12, 12, 200_001)
  p, q = stats.norm.pdf(x, m1, np.sqrt(v1)), stats.norm.pdf(x, m2, np.sqrt(v2))
  numeric = np.trapezoid(p * (np.log(p) - np.log(q)), x)
  np.testing.assert_allclose(float(bound.gaussian_kl(m1, np.log(v1), m2, np.log(v2))), numeric, rtol=1e-5)


def _exact_reverse_log_variance(sched):
  """For Gaussian data the true q(x_{t-1} | x_t) has variance beta-tilde_t + c_t^2 Var[x_0 | x_t]
  (the posterior mean is linear in x_0), a different number per dimension."""
  abar = sched.alphas_cumprod[:, None]
  post = STD**2 * (1 - abar) / (abar * STD**2 + 1 - abar)
  return jnp.log(sched.posterior_variance[:, None] + sched.posterior_mean_coef_x0[:, None]**2 * post)


@pytest.fixture(scope="module")
def gaussian_case():
  x0 = MEAN + STD * jax.random.normal(jax.random.key(0), (2000, 2))
  exact = -stats.norm.logpdf(np.asarray(x0), np.asarray(MEAN), np.asarray(STD)).sum(-1)
  return x0, exact


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_bound_with_the_true_reverse_process_is_the_exact_nll(schedule, gaussian_case):
  x0, exact = gaussian_case
  sched = make_schedule(schedule, 1000)
  run = jax.jit(lambda x, rng, var: bound.variational_bound(optimal_predictor(sched), sched, x, rng,
                                                            variance=var, decoder="gaussian"))
  optimal = run(x0, jax.random.key(1), _exact_reverse_log_variance(sched))
  gap = np.asarray(optimal["total"]) - exact
  # Mean over 2000 examples; its standard error is ~0.03 nats.
  assert abs(gap.mean()) < 0.12, gap.mean()
  assert float(optimal["prior"].mean()) < 1e-3
  # The fixed variances are worse models: their bound lies above the exact NLL, by a margin.
  for kind in ["small", "large"]:
    fixed = run(x0, jax.random.key(1), reverse_log_variance(sched, jnp.arange(1000), kind))
    assert 0.2 < float((fixed["total"] - optimal["total"]).mean()) < 3.0


def test_stratified_bound_estimates_the_full_sum(gaussian_case):
  x0, _ = gaussian_case
  sched = make_schedule("linear", 1000)
  run = jax.jit(lambda x, rng, k: bound.variational_bound(optimal_predictor(sched), sched, x, rng, num_timesteps=k,
                                                          variance="large", decoder="gaussian"), static_argnums=2)
  full = run(x0, jax.random.key(2), 0)["denoising"]
  estimate = run(x0, jax.random.key(3), 40)["denoising"]
  se = float(jnp.std(estimate - full)) / np.sqrt(x0.shape[0])
  assert abs(float(estimate.mean() - full.mean())) < 4 * se + 0.02


def test_point_mass_image_bound_is_the_decoder_mass():
  """Data always equal to one 8-bit image x*: the perfect denoiser returns x*, the posterior with
  "small" variance is matched exactly, and only the decoder's mass of the bins around x* remains."""
  sched = make_schedule("linear", 1000)
  pixels = np.array([0, 1, 77, 128, 254, 255])
  x_star = jnp.asarray(pixels / 127.5 - 1.0, jnp.float32)[None, :].repeat(3, 0)

  def predict(xt, t):
    abar = sched.alphas_cumprod[t][:, None]
    return (xt - jnp.sqrt(abar) * x_star) / jnp.sqrt(1 - abar), x_star

  terms = bound.variational_bound(predict, sched, x_star, jax.random.key(4), variance="small")
  sigma = np.sqrt(float(sched.posterior_variance[1]))
  inner = 2 * stats.norm.cdf(1 / 255 / sigma) - 1
  edge = stats.norm.cdf(1 / 255 / sigma)
  expected = -(4 * np.log(inner) + 2 * np.log(edge))
  np.testing.assert_allclose(np.asarray(terms["decoder"]), expected, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(terms["denoising"]), 0.0, atol=1e-3)
  np.testing.assert_allclose(np.asarray(terms["total"]), expected + np.asarray(terms["prior"]), rtol=1e-4)
