"""Likelihood conventions (nats, bits/dim, dequantization, binarization) and the IWAE estimator."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import multivariate_normal

from jgen.eval import iwae, likelihood


def test_uniform_models_are_exactly_8_bits_per_dim():
  x_shape = (5, 28, 28, 1)
  d = 28 * 28
  # the uniform density on [0,1]^D has log p = 0 everywhere: 8 bits/dim after dequantization
  rep = likelihood.report(np.zeros(5), x_shape, "continuous_unit", "exact")
  assert rep["bits_per_dim"]["value"] == 8.0 and rep["nll"]["value"] == 0.0
  # the uniform distribution over 256 levels per pixel: -log p = D ln 256 nats
  rep = likelihood.report(np.full(5, d * math.log(256)), x_shape, "discrete_8bit", "exact")
  assert np.isclose(rep["bits_per_dim"]["value"], 8.0, rtol=1e-12)
  assert rep["nll"]["unit"] == "nats/example" and rep["bits_per_dim"]["unit"] == "bits/dim"
  # binary and 2-D point data report nats only
  assert set(likelihood.report(np.ones(3), (3, 2), "continuous", "exact")) == {"nll"}
  assert set(likelihood.report(np.ones(3), x_shape[:1] + x_shape[1:], "binary", "lower_bound", 5)) == {"nll"}
  with pytest.raises(ValueError):
    likelihood.Likelihood(1.0, "nats/example", "approximately")


def test_bits_per_dim_hand_computation():
  # a standard normal over 3 dims at x = 0: nll = 1.5 ln(2 pi) nats
  nll = 1.5 * math.log(2 * math.pi)
  assert np.isclose(likelihood.nats_to_bits_per_dim(nll, 3), 0.5 * math.log2(2 * math.pi))
  assert np.isclose(likelihood.dequantized_bits_per_dim(nll, 3), 0.5 * math.log2(2 * math.pi) + 8)
  assert np.isclose(likelihood.rescale_log_det(784, 2.0), 784 * math.log(2.0))


def test_dequantized_density_of_a_cellwise_model_recovers_the_discrete_bits():
  """A density constant on each 1/256 cell, equal to 256 * P(k) per dimension, has bpd = the discrete bpd."""
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.ones(256), size=12)  # a categorical per dimension
  k = rng.integers(0, 256, size=(40, 12))
  x = k / 255.0
  y = likelihood.dequantize(x, jax.random.key(1))
  np.testing.assert_array_equal(np.floor(np.asarray(y) * 256).astype(int), k)  # each value stays in its cell
  np.testing.assert_array_equal(np.asarray(likelihood.to_levels(x)), k)
  cell = np.floor(np.asarray(y) * 256).astype(int)
  log_density = np.log(256 * probs[np.arange(12), cell]).sum(1)
  log_pmf = np.log(probs[np.arange(12), k]).sum(1)
  continuous = likelihood.report(-log_density, (40, 12), "continuous_unit", "exact")["bits_per_dim"]["value"]
  discrete = likelihood.report(-log_pmf, (40, 12), "discrete_8bit", "exact")["bits_per_dim"]["value"]
  assert np.isclose(continuous, discrete, rtol=1e-5)


def test_logit_transform_log_det_matches_autodiff():
  x = jnp.array([[0.0, 0.3, 1.0], [0.5, 0.99, 0.01]])
  y, log_det = likelihood.logit_transform(x, alpha=0.05)
  dydx = jax.vmap(jax.vmap(jax.grad(lambda v: likelihood.logit_transform(v[None, None], 0.05)[0][0, 0])))(x)
  np.testing.assert_allclose(log_det, jnp.log(dydx).sum(1), rtol=1e-5)
  np.testing.assert_allclose(jax.nn.sigmoid(y), 0.05 + 0.9 * x, rtol=1e-5)


def test_binarization_is_fixed_and_follows_intensities():
  x = jnp.linspace(0.0, 1.0, 1000).reshape(10, 10, 10, 1)
  a, b = likelihood.binarize(x), likelihood.binarize(x)
  np.testing.assert_array_equal(a, b)
  assert set(np.unique(np.asarray(a))) <= {0.0, 1.0}
  assert abs(float(a.mean()) - 0.5) < 0.05
  assert not np.array_equal(a, likelihood.binarize(x, seed=1))


class LinearGaussian:
  """PPCA as a VAE: z ~ N(0, I), x | z ~ N(W z + mu, s^2 I); q(z | x) a Gaussian around the exact posterior.

  With shift 0 and scale 1, q is the exact posterior and every importance weight equals p(x).
  """

  def __init__(self, dim_x=5, dim_z=2, seed=0):
    rng = np.random.default_rng(seed)
    self.w = jnp.asarray(rng.normal(size=(dim_x, dim_z)), jnp.float32)
    self.mu = jnp.asarray(rng.normal(size=dim_x), jnp.float32)
    self.s2 = 0.3
    m = self.w.T @ self.w + self.s2 * jnp.eye(dim_z)
    self.m_inv = jnp.linalg.inv(m)
    self.post_cov = self.s2 * self.m_inv

  def sample_data(self, n, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, self.w.shape[1]))
    return jnp.asarray(z @ np.asarray(self.w).T + np.asarray(self.mu)
                       + math.sqrt(self.s2) * rng.normal(size=(n, self.w.shape[0])), jnp.float32)

  def exact_log_prob(self, x):
    return multivariate_normal.logpdf(x, self.mu, self.w @ self.w.T + self.s2 * jnp.eye(self.w.shape[0]))

  importance_weights = True

  def prepare_data(self, x, rng):
    return x

  def posterior(self, state, x):
    mean = (x - self.mu) @ self.w @ self.m_inv.T + state["shift"]
    return mean, state["scale"] ** 2 * self.post_cov

  def log_importance_weights(self, state, x, rng, num_samples):
    mean, cov = self.posterior(state, x)
    eps = jax.random.normal(rng, (num_samples,) + mean.shape)
    z = mean + eps @ jnp.linalg.cholesky(cov).T
    log_q = multivariate_normal.logpdf(z, mean, cov)
    log_prior = multivariate_normal.logpdf(z, jnp.zeros(mean.shape[-1]), jnp.eye(mean.shape[-1]))
    x_mean = z @ self.w.T + self.mu
    log_lik = jax.scipy.stats.norm.logpdf(x, x_mean, math.sqrt(self.s2)).sum(-1)
    return log_prior + log_lik - log_q

  def analytic_elbo(self, state, x):
    """log p(x) - KL(q || exact posterior), both Gaussians with covariances scale^2 C and C."""
    d = self.w.shape[1]
    c = state["scale"] ** 2
    shift = state["shift"]
    maha = shift @ jnp.linalg.solve(self.post_cov, shift)
    kl = 0.5 * (d * c + maha - d - d * jnp.log(c))
    return self.exact_log_prob(x) - kl


EXACT = {"shift": jnp.zeros(2), "scale": jnp.ones(())}
MISMATCHED = {"shift": jnp.array([0.4, -0.3]), "scale": jnp.asarray(1.6)}
FAR = {"shift": jnp.array([1.5, -1.0]), "scale": jnp.asarray(2.5)}  # a poor proposal: the bound tightens slowly


def test_iwae_is_exact_with_the_true_posterior():
  model = LinearGaussian()
  x = model.sample_data(16)
  exact = model.exact_log_prob(x)
  for k, chunk in ((1, 1), (7, 3), (64, 64)):
    est = iwae.iwae_estimate(model.log_importance_weights, EXACT, x, jax.random.key(k), k, chunk)
    np.testing.assert_allclose(est, exact, atol=2e-4)


def test_iwae_with_one_sample_is_the_elbo():
  model = LinearGaussian()
  x = model.sample_data(8)
  rng = jax.random.key(3)
  one = iwae.iwae_estimate(model.log_importance_weights, MISMATCHED, x, rng, 1, 1)
  # the single chunk draws with fold_in(rng, 0): the same weight as a one-sample ELBO
  elbo = iwae.elbo_estimate(model.log_importance_weights, MISMATCHED, x, jax.random.fold_in(rng, 0), 1)
  np.testing.assert_allclose(one, elbo, rtol=1e-6)
  # and on average it is the closed-form ELBO = log p(x) - KL(q || posterior)
  reps = jax.vmap(lambda r: iwae.iwae_estimate(model.log_importance_weights, MISMATCHED, x, r, 1, 1))(
      jax.random.split(jax.random.key(4), 4000))
  se = reps.std(0) / math.sqrt(4000)
  np.testing.assert_array_less(jnp.abs(reps.mean(0) - model.analytic_elbo(MISMATCHED, x)), 4 * se + 1e-4)


def test_iwae_tightens_with_k_on_average_and_stays_below_log_p():
  model = LinearGaussian()
  x = model.sample_data(16)
  exact = model.exact_log_prob(x)
  means = []
  for k in (1, 4, 16, 64):
    reps = jax.vmap(lambda r: iwae.iwae_estimate(model.log_importance_weights, FAR, x, r, k, 64))(
        jax.random.split(jax.random.key(k), 200))
    means.append(float(reps.mean()))
  assert all(a < b for a, b in zip(means, means[1:])), means
  assert means[-1] <= float(exact.mean())
  assert float(exact.mean()) - means[-1] < 0.5 * (float(exact.mean()) - means[0])


def test_chunks_that_do_not_divide_k_drop_the_surplus_draws():
  model = LinearGaussian()
  x = model.sample_data(4)
  rng = jax.random.key(5)
  est = iwae.iwae_estimate(model.log_importance_weights, MISMATCHED, x, rng, 250, 100)
  weights = jnp.concatenate([model.log_importance_weights(MISMATCHED, x, jax.random.fold_in(rng, i), 100)
                             for i in range(3)])[:250]
  np.testing.assert_allclose(est, jax.nn.logsumexp(weights, 0) - math.log(250), rtol=1e-6)
  # K = 5000 in chunks of 100: memory of one chunk, close to exact for this mild mismatch
  big = iwae.iwae_estimate(model.log_importance_weights, MISMATCHED, x, rng, 5000, 100)
  np.testing.assert_allclose(big, model.exact_log_prob(x), atol=0.05)


def test_iwae_sharded_over_the_batch_matches_one_device():
  model = LinearGaussian()
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  x = model.sample_data(2 * jax.device_count())
  batches = [x[:8], x[8:]] if jax.device_count() == 8 else [x]
  sharded = iwae.iwae_log_likelihood(model, MISMATCHED, batches, jax.random.key(6), 32, 8, mesh=mesh)
  single = iwae.iwae_log_likelihood(model, MISMATCHED, batches, jax.random.key(6), 32, 8)
  np.testing.assert_allclose(sharded, single, rtol=1e-5)
  with pytest.raises(NotImplementedError):
    iwae.iwae_log_likelihood(object(), None, [x], jax.random.key(0), 4)


def test_vae_importance_weights_come_from_logits_and_average_to_the_elbo():
  from jgen import config as config_lib
  from jgen import registry
  from jgen.data import spec as spec_lib
  from tests.helpers import config_path

  family = registry.build(config_lib.load(config_path("configs/vae/conv_digits.py:smoke")))
  state = family.init(jax.random.key(0), spec_lib.to_model_input(family.spec.example_batch(4)))
  x = (jax.random.uniform(jax.random.key(1), (2, 8, 8, 1)) < 0.3).astype(jnp.float32)
  # One-sample weights average to the ELBO (its KL in closed form, the weights' by sampling).
  w = family.log_importance_weights(state, x, jax.random.key(2), 20000)
  elbo = jax.vmap(lambda r: family.log_density(state, x, r))(jax.random.split(jax.random.key(3), 20000))
  se = jnp.sqrt(w.var(0) / 20000 + elbo.var(0) / 20000)
  np.testing.assert_array_less(jnp.abs(w.mean(0) - elbo.mean(0)), 4 * se + 1e-3)
  # Saturated logits: the weights stay exact where clipped probabilities would floor log p(x|z) at D log 1e-7.
  def saturate(path, leaf):
    names = "/".join(str(getattr(p, "key", getattr(p, "name", p))) for p in path)
    return leaf + 40.0 if "decoder" in names and "bias" in names and leaf.shape == (1,) else leaf
  saturated = state.replace(params=jax.tree_util.tree_map_with_path(saturate, state.params))
  zeros = jnp.zeros((1, 8, 8, 1))
  w = family.log_importance_weights(saturated, zeros, jax.random.key(4), 8)
  assert float(w.max()) < 64 * math.log(1e-7) - 100  # about -40 nats a pixel, not -16




def test_token_report_gives_bits_per_char_and_no_bits_per_dim():
  """Text is tokenised by characters: bits/char = mean nll / (T ln 2) over sequences of T characters."""
  out = likelihood.report([100.0, 120.0], (2, 50), "tokens", "exact")
  assert "bits_per_dim" not in out
  assert out["bits_per_char"]["unit"] == "bits/char"
  np.testing.assert_allclose(out["bits_per_char"]["value"], 110.0 / (50 * math.log(2)), rtol=1e-12)
