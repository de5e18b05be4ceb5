"""Gaussian mixture EM against scikit-learn's GaussianMixture, plus restarts, sampling and outliers."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from jgen.families.classical import gmm
from jgen.families.classical import gmm_fit
from jgen.families.classical import kmeans
from jgen.families.classical import synthetic


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


def _data(seed=0, n_per=150, dim=3, k=4):
  rng = np.random.default_rng(seed)
  parts = [rng.normal(size=(n_per, dim)) @ rng.normal(size=(dim, dim)) + 4 * rng.normal(size=dim) for _ in range(k)]
  return np.concatenate(parts)


@functools.partial(jax.jit, static_argnums=(2,))
def _em(params, x, iters):
  return jax.lax.scan(lambda p, _: gmm.em_step(p, x), params, None, length=iters)


def _sklearn_from(params, cov_type, iters):
  w = np.asarray(params.weights, np.float64)
  cov = np.asarray(params.covariances)
  prec = np.linalg.inv(cov) if cov_type == "full" else 1.0 / cov
  return GaussianMixture(len(w), covariance_type=cov_type, weights_init=w / w.sum(),
                         means_init=np.asarray(params.means), precisions_init=prec, max_iter=iters, tol=0.0)


@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical"])
def test_em_matches_sklearn_from_the_same_start(cov_type):
  x = _data()
  start = gmm_fit.init_from_kmeans(jax.random.key(0), jnp.asarray(x), 4, cov_type, lloyd_iters=1)
  iters = 40
  params, lls = _em(start, jnp.asarray(x), iters)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    ref = _sklearn_from(start, cov_type, iters).fit(x)
  np.testing.assert_allclose(params.weights, ref.weights_, rtol=1e-6)
  np.testing.assert_allclose(params.means, ref.means_, rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(params.covariances, ref.covariances_, rtol=1e-6, atol=1e-9)
  ll = float(jnp.mean(gmm.log_prob(params, jnp.asarray(x))))
  np.testing.assert_allclose(ll, ref.score(x), rtol=1e-6)
  np.testing.assert_allclose(gmm.log_prob(params, jnp.asarray(x)), ref.score_samples(x), rtol=1e-6)
  np.testing.assert_array_equal(gmm.predict(params, jnp.asarray(x)), ref.predict(x))
  np.testing.assert_allclose(gmm.bic(params, jnp.asarray(x)), ref.bic(x), rtol=1e-9)
  np.testing.assert_allclose(gmm.aic(params, jnp.asarray(x)), ref.aic(x), rtol=1e-9)
  # lls[i] is the log-likelihood of the parameters entering iteration i: it never decreases.
  lls = np.asarray(lls)
  assert np.all(np.diff(lls) >= -1e-12 * np.abs(lls).max())
  assert lls[-1] > lls[0]


def _shaped_data(seed=0, n=1100, dim=37, k=3, offset=0.0):
  """k clusters with random, poorly conditioned covariances, all shifted by `offset`."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(k, size=n)
  centers = 0.3 * rng.normal(size=(k, dim))  # overlapping: responsibilities stay soft, the means move
  mixing = rng.normal(size=(k, dim, dim)) / np.sqrt(dim)
  return centers[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, dim)), mixing[labels]) + offset


@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical"])
def test_fit_matches_sklearn_across_blocks_and_bands(cov_type):
  # D = 37 spans three column bands of the full-covariance products; N is two row blocks and a remainder.
  # The fitted log-likelihood (and every parameter) must be sklearn's after the same iterations.
  assert gmm.BAND_WIDTH < 37 < 3 * gmm.BAND_WIDTH
  x = _shaped_data(n=2 * gmm.BLOCK_SIZE[cov_type] + 76)
  start = gmm_fit.init_from_kmeans(jax.random.key(0), jnp.asarray(x), 3, cov_type, lloyd_iters=2)
  # Early iterations, where the means still move, as well as near convergence.
  for iters in (2, 25):
    params, ll, n_iter = gmm_fit.fit_from(start, jnp.asarray(x), max_iter=iters, tol=0.0)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", ConvergenceWarning)
      ref = _sklearn_from(start, cov_type, iters).fit(x)
    assert int(n_iter) == ref.n_iter_ == iters
    np.testing.assert_allclose(ll, ref.score(x), rtol=1e-10)
    np.testing.assert_allclose(params.weights, ref.weights_, rtol=1e-8)
    np.testing.assert_allclose(params.means, ref.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(params.covariances, ref.covariances_, rtol=1e-7, atol=1e-10)
  # Block size changes only the order of the sums.
  small, ll_small = gmm.em_step(params, jnp.asarray(x), block_size=64)
  whole, ll_whole = gmm.em_step(params, jnp.asarray(x), block_size=len(x))
  np.testing.assert_allclose(ll_small, ll_whole, rtol=1e-12)
  np.testing.assert_allclose(small.covariances, whole.covariances, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_float32_fit_far_from_the_origin_keeps_its_accuracy(cov_type):
  # Offset by 1000, float32 sums of x^2 about the origin lose every digit of a unit variance; the sums are
  # taken near the component means, so the float32 fit reaches float64's log-likelihood.
  x = _shaped_data(offset=1000.0)
  start = gmm_fit.init_from_kmeans(jax.random.key(0), jnp.asarray(x), 3, cov_type, lloyd_iters=2)
  start32 = jax.tree.map(lambda a: a.astype(jnp.float32), start)
  _, ll32, _ = gmm_fit.fit_from(start32, jnp.asarray(x, jnp.float32), max_iter=20, tol=0.0)
  assert ll32.dtype == jnp.float32
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    ref = _sklearn_from(start, cov_type, 20).fit(x)
  np.testing.assert_allclose(float(ll32), ref.score(x), rtol=2e-5)


def test_restarts_keep_the_best():
  x = jnp.asarray(_data(seed=1, k=5))
  best, best_ll, _ = gmm_fit.fit(jax.random.key(3), x, 5, "full", n_init=4, max_iter=60, tol=1e-6)
  singles = [gmm_fit.fit(r, x, 5, "full", n_init=1, max_iter=60, tol=1e-6)[1]
             for r in jax.random.split(jax.random.key(3), 4)]
  np.testing.assert_allclose(best_ll, max(singles), rtol=1e-10)
  np.testing.assert_allclose(best_ll, jnp.mean(gmm.log_prob(best, x)), rtol=1e-12)


def test_fit_stops_by_tolerance_like_sklearn():
  x = _data(seed=2)
  start = gmm_fit.init_from_kmeans(jax.random.key(1), jnp.asarray(x), 4, "full", lloyd_iters=1)
  params, ll, n_iter = gmm_fit.fit_from(start, jnp.asarray(x), max_iter=200, tol=1e-3)
  ref = _sklearn_from(start, "full", 200)
  ref.tol = 1e-3
  ref.fit(x)
  assert int(n_iter) == ref.n_iter_
  np.testing.assert_allclose(ll, ref.score(x), rtol=1e-6)


def test_kmeans_plusplus_then_lloyd_finds_separated_centers():
  centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
  x, _ = synthetic.blobs(np.random.default_rng(0), 100, centers, std=0.3)
  found = kmeans.lloyd(jnp.asarray(x), kmeans.plusplus(jax.random.key(0), jnp.asarray(x), 4), 10)
  dist = np.linalg.norm(np.asarray(found)[:, None] - centers[None], axis=-1)
  np.testing.assert_array_less(dist.min(axis=0), 0.2)


@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical"])
def test_samples_have_the_mixture_moments(cov_type):
  x = jnp.asarray(_data())
  params = gmm_fit.init_from_kmeans(jax.random.key(0), x, 4, cov_type)
  samples, comp = gmm.sample(params, jax.random.key(1), 100_000)
  mean, cov = gmm.mean_and_covariance(params)
  samples = np.asarray(samples)
  n = samples.shape[0]
  var = np.diag(np.asarray(cov))
  np.testing.assert_array_less(np.abs(samples.mean(0) - mean), 6 * np.sqrt(var / n))
  # Mixtures have heavier fourth moments than a Gaussian: a looser bound.
  np.testing.assert_array_less(np.abs(np.cov(samples.T) - cov), 10 * np.sqrt((np.outer(var, var) + cov ** 2) / n))
  np.testing.assert_allclose(np.bincount(np.asarray(comp), minlength=4) / n, params.weights, atol=0.01)


def test_outlier_threshold_flags_the_quantile_and_the_far_points():
  centers = np.array([[0.0, 0.0], [5.0, 5.0]])
  x, _ = synthetic.blobs(np.random.default_rng(0), 500, centers, std=0.5)
  x = jnp.asarray(x)
  params, _, _ = gmm_fit.fit(jax.random.key(0), x, 2, "full", max_iter=50)
  threshold = gmm.outlier_threshold(params, x, 0.98)
  flagged = gmm.outlier_scores(params, x) > threshold
  np.testing.assert_allclose(jnp.mean(flagged), 0.02, atol=0.002)
  far = jnp.array([[20.0, -20.0], [2.5, 2.5]])
  assert bool(jnp.all(gmm.outlier_scores(params, far) > threshold))
