"""Variational Bayesian GMM against scikit-learn's BayesianGaussianMixture; monotone ELBO; pruning."""

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gammaln, multigammaln
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from jgen.families.classical import bgmm
from jgen.families.classical import synthetic

CENTERS = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
ITERS = 60  # one length for every run, so each compiled loop is reused


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


@functools.partial(jax.jit, static_argnums=(3, 4))
def _run(prior, post, x, dp, iters):
  return jax.lax.scan(lambda p, _: bgmm.step(prior, p, x, dp), post, None, length=iters)


def _sklearn_random_resp(n, k, seed):
  """The responsibilities scikit-learn starts from with init_params="random"."""
  resp = np.random.RandomState(seed).uniform(size=(n, k))
  return resp / resp.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dp", [False, True])
def test_matches_sklearn_under_same_priors_and_init(dp):
  x, _ = synthetic.blobs(np.random.default_rng(0), 100, CENTERS, std=0.7)
  n, dim = x.shape
  k, iters = 10, ITERS
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    ref = BayesianGaussianMixture(
        n_components=k, init_params="random", max_iter=iters, tol=0.0, random_state=0, reg_covar=0.0,
        weight_concentration_prior_type="dirichlet_process" if dp else "dirichlet_distribution").fit(x)
  xj = jnp.asarray(x)
  prior = bgmm.default_prior(xj, k)
  post = bgmm.m_step(prior, xj, jnp.asarray(_sklearn_random_resp(n, k, 0)), dp)
  post, elbos = _run(prior, post, xj, dp, iters)
  np.testing.assert_allclose(bgmm.expected_weights(post), ref.weights_, rtol=1e-6, atol=1e-12)
  np.testing.assert_allclose(post.means, ref.means_, rtol=1e-6)
  np.testing.assert_allclose(post.inv_scale / post.dof[:, None, None], ref.covariances_, rtol=1e-6, atol=1e-12)
  np.testing.assert_allclose(post.dof, ref.degrees_of_freedom_, rtol=1e-10)
  np.testing.assert_allclose(post.mean_precision, ref.mean_precision_, rtol=1e-10)
  # scikit-learn's bound drops the terms that depend only on the priors and N; add them back.
  nu0, w0_inv = float(dim), np.cov(x.T)
  log_b0 = 0.5 * nu0 * np.linalg.slogdet(w0_inv)[1] - 0.5 * nu0 * dim * math.log(2) - multigammaln(0.5 * nu0, dim)
  alpha0 = 1.0 / k
  log_weight_prior = k * math.log(alpha0) if dp else gammaln(k * alpha0) - k * gammaln(alpha0)
  dropped = (k * log_b0 - 0.5 * n * dim * math.log(2 * math.pi) + k * dim * (dim - 1) / 4 * math.log(math.pi)
             + log_weight_prior)
  np.testing.assert_allclose(np.asarray(elbos), np.asarray(ref.lower_bounds_) + dropped, rtol=1e-9)
  elbos = np.asarray(elbos)
  assert np.all(np.diff(elbos) >= -1e-9 * np.abs(elbos).max())


@pytest.mark.parametrize("dp", [False, True])
def test_prunes_to_the_three_true_clusters(dp):
  x, labels = synthetic.blobs(np.random.default_rng(1), 100, CENTERS, std=0.7)
  xj = jnp.asarray(x)
  prior = bgmm.default_prior(xj, 10)
  resp = jax.random.dirichlet(jax.random.key(0), jnp.ones(10), (x.shape[0],))
  post, elbos = _run(prior, bgmm.m_step(prior, xj, resp, dp), xj, dp, ITERS)
  elbos = np.asarray(elbos)
  assert np.all(np.diff(elbos) >= -1e-9 * np.abs(elbos).max())
  weights = np.asarray(bgmm.expected_weights(post))
  assert np.sum(weights > 0.01) == 3, weights
  # The kept components are the true clusters.
  kept = np.asarray(post.means)[weights > 0.01]
  dist = np.linalg.norm(kept[:, None] - CENTERS[None], axis=-1)
  np.testing.assert_array_less(dist.min(axis=0), 0.2)
  pred = np.asarray(bgmm.predict(post, xj))
  assert all(len(np.unique(pred[labels == c])) == 1 for c in range(3))


def test_predictive_samples_have_its_moments():
  x, _ = synthetic.blobs(np.random.default_rng(2), 100, CENTERS, std=0.7)
  xj = jnp.asarray(x)
  # Extra prior degrees of freedom keep every predictive Student-t's fourth moment finite.
  prior = bgmm.default_prior(xj, 3)._replace(dof=jnp.asarray(8.0))
  resp = jax.nn.one_hot(jnp.repeat(jnp.arange(3), 100), 3, dtype=xj.dtype)
  post, _ = _run(prior, bgmm.m_step(prior, xj, resp), xj, False, ITERS)
  samples, _ = bgmm.sample(post, jax.random.key(0), 100_000)
  mean, cov = bgmm.mean_and_covariance(post)
  samples = np.asarray(samples)
  n = samples.shape[0]
  var = np.diag(np.asarray(cov))
  np.testing.assert_array_less(np.abs(samples.mean(0) - mean), 6 * np.sqrt(var / n))
  np.testing.assert_array_less(np.abs(np.cov(samples.T) - cov), 12 * np.sqrt((np.outer(var, var) + cov ** 2) / n))


def test_predictive_density_integrates_to_one():
  x, _ = synthetic.blobs(np.random.default_rng(3), 50, CENTERS[:2], std=0.7)
  xj = jnp.asarray(x)
  prior = bgmm.default_prior(xj, 4)
  post, _ = _run(prior, bgmm.m_step(prior, xj, jax.random.dirichlet(jax.random.key(1), jnp.ones(4), (100,)), True),
                 xj, True, ITERS)
  g = np.linspace(-30, 36, 661)
  grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
  mass = float(jnp.sum(jnp.exp(bgmm.log_prob(post, jnp.asarray(grid))))) * (g[1] - g[0]) ** 2
  # Student-t tails beyond the grid hold a little mass.
  assert 0.97 < mass <= 1.0 + 1e-3, mass
