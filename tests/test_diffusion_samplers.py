"""DDPM and DDIM samplers with the closed-form optimal denoiser for Gaussian data N(m, s^2).

For x_0 ~ N(m, s^2) the posterior mean is E[x_0 | x_t] = m + sqrt(abar) s^2 / (abar s^2 + 1 - abar)
(x_t - sqrt(abar) m): plugging it in, a correct sampler must return N(m, s^2).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.families.diffusion import samplers
from jgen.families.diffusion.schedules import make_schedule, q_posterior

MEAN = jnp.array([1.5, -0.5])
STD = jnp.array([0.5, 1.2])
N = 5000


def optimal_predictor(sched, mean=MEAN, std=STD):
  def predict(xt, t):
    abar = sched.alphas_cumprod[t][:, None]
    x0 = mean + jnp.sqrt(abar) * std**2 / (abar * std**2 + 1 - abar) * (xt - jnp.sqrt(abar) * mean)
    return (xt - jnp.sqrt(abar) * x0) / jnp.sqrt(1 - abar), x0

  return predict


def _check_moments(x):
  np.testing.assert_allclose(x.mean(0), MEAN, atol=0.06)
  np.testing.assert_allclose(x.std(0), STD, rtol=0.04)


@pytest.mark.parametrize("schedule,variance", [("linear", "small"), ("cosine", "large")])
def test_ddpm_reproduces_gaussian_data(schedule, variance):
  sched = make_schedule(schedule, 1000)
  run = jax.jit(lambda x_T, rng: samplers.ddpm_sample(optimal_predictor(sched), sched, x_T, rng, variance=variance))
  _check_moments(np.asarray(run(jax.random.normal(jax.random.key(0), (N, 2)), jax.random.key(1))))


@pytest.mark.parametrize("schedule,eta", [("linear", 0.0), ("cosine", 1.0)])
def test_ddim_reproduces_gaussian_data(schedule, eta):
  sched = make_schedule(schedule, 1000)
  run = jax.jit(lambda x_T, rng: samplers.ddim_sample(optimal_predictor(sched), sched, x_T, rng, steps=1000, eta=eta))
  _check_moments(np.asarray(run(jax.random.normal(jax.random.key(2), (N, 2)), jax.random.key(3))))


def test_ddim_eta0_is_deterministic_given_the_noise():
  sched = make_schedule("linear", 1000)
  x_T = jax.random.normal(jax.random.key(4), (64, 2))
  run = jax.jit(lambda x_T, rng, eta: samplers.ddim_sample(optimal_predictor(sched), sched, x_T, rng, steps=20, eta=eta))
  a, b = run(x_T, jax.random.key(5), 0.0), run(x_T, jax.random.key(6), 0.0)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(run(x_T, jax.random.key(5), 1.0), run(x_T, jax.random.key(6), 1.0))
  # Different starting noise gives different samples.
  assert not np.allclose(a, run(x_T + 0.1, jax.random.key(5), 0.0))


def test_ddim_eta1_single_step_is_the_ancestral_step():
  """With eta = 1 and t_prev = t - 1, sigma^2 = beta-tilde_t and the mean is the posterior mean."""
  sched = make_schedule("cosine", 1000)
  k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
  xt, x0, noise = jax.random.normal(k1, (4, 3)), jax.random.uniform(k2, (4, 3), minval=-1), jax.random.normal(k3, (4, 3))
  t = jnp.array([1, 10, 500, 999])
  abar = sched.alphas_cumprod[t][:, None]
  eps = (xt - jnp.sqrt(abar) * x0) / jnp.sqrt(1 - abar)
  ddim = samplers.ddim_step(sched, xt, t, t - 1, eps, x0, noise, 1.0)
  ddpm = samplers.ddpm_step(sched, xt, t, x0, noise, "small")
  # float32 cancellation in sqrt(1 - abar_prev - sigma^2) at t = 1 costs ~1e-4.
  np.testing.assert_allclose(ddim, ddpm, atol=5e-4)
  mean, _, _ = q_posterior(sched, x0, xt, t)
  np.testing.assert_allclose(samplers.ddim_step(sched, xt, t, t - 1, eps, x0, 0.0 * noise, 1.0), mean, atol=5e-4)
  # The last step (to t_prev = -1) returns the clean estimate.
  np.testing.assert_allclose(samplers.ddim_step(sched, xt, t, jnp.full(4, -1), eps, x0, noise, 0.0), x0, atol=1e-5)


def test_ddim_timesteps_span_the_chain():
  for steps in [1, 10, 50, 1000]:
    ts = samplers.ddim_timesteps(1000, steps)
    assert len(ts) == steps and ts[-1] == 999 and np.all(np.diff(ts) > 0)
    assert steps == 1 or ts[0] == 0
  with pytest.raises(ValueError):
    samplers.ddim_timesteps(1000, 1001)
