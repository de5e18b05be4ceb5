"""PPCA, factor analysis and Student-t PPCA against scikit-learn, closed forms and known subspaces."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from sklearn.decomposition import PCA, FactorAnalysis

from jgen.families.classical import factor_analysis as fa
from jgen.families.classical import lowrank_gaussian as lrg
from jgen.families.classical import ppca
from jgen.families.classical import robust_ppca as rppca
from jgen.families.classical import synthetic


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


def _data(n=400, dim=8, k=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, k)) @ rng.normal(size=(k, dim)) + rng.normal(size=(n, dim)) * rng.uniform(0.3, 1.0, dim)
  return x + 3.0


def _moments_match(samples, mean, cov, tol_sd=6.0):
  """Sample mean and covariance within `tol_sd` Gaussian standard errors of the model's."""
  samples, mean, cov = (np.asarray(a, np.float64) for a in (samples, mean, cov))
  n = samples.shape[0]
  var = np.diag(cov)
  np.testing.assert_array_less(np.abs(samples.mean(0) - mean), tol_sd * np.sqrt(var / n))
  se_cov = np.sqrt((np.outer(var, var) + cov ** 2) / n)
  np.testing.assert_array_less(np.abs(np.cov(samples.T) - cov), tol_sd * se_cov)


def test_ppca_log_likelihood_equals_sklearn_pca_score():
  x = _data()
  n, k = x.shape[0], 3
  mean, cov = lrg.moments(jnp.asarray(x))
  # scikit-learn's PCA estimates the covariance with 1/(N-1).
  params = ppca.closed_form(mean, cov, k, ddof_correction=n / (n - 1))
  ours = float(jnp.sum(ppca.log_prob(params, jnp.asarray(x))))
  theirs = PCA(n_components=k, svd_solver="full").fit(x).score(x) * n
  np.testing.assert_allclose(ours, theirs, rtol=1e-6)
  np.testing.assert_allclose(float(ppca.mean_log_likelihood(params, mean, cov)) * n, theirs, rtol=1e-6)


def test_moments_over_bands_and_blocks_equal_the_dense_covariance():
  # D = 300 spans three column bands and N = 2500 two row blocks and a remainder.
  assert lrg.GRAM_BAND < 300 < 3 * lrg.GRAM_BAND and lrg.GRAM_ROWS < 2500 < 3 * lrg.GRAM_ROWS
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2500, 300)) @ rng.normal(size=(300, 300)) / 10 + rng.normal(size=300)
  mean, cov = lrg.moments(jnp.asarray(x))
  np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
  np.testing.assert_allclose(cov, np.cov(x.T, bias=True), rtol=1e-10, atol=1e-12)
  assert np.array_equal(cov, cov.T)
  # scikit-learn's exact PCA divides by N - 1.
  fitted = ppca.closed_form(mean, cov, 5, ddof_correction=2500 / 2499)
  ref = PCA(n_components=5, svd_solver="full").fit(x)
  np.testing.assert_allclose(float(jnp.mean(ppca.log_prob(fitted, jnp.asarray(x)))), ref.score(x), rtol=1e-10)


def test_float32_moments_far_from_the_origin_keep_their_accuracy():
  # Offset by 1000, a float32 x^T x would lose every digit of a unit variance; each block is centred first.
  rng = np.random.default_rng(1)
  x = rng.normal(size=(3000, 40)) * rng.uniform(0.5, 2.0, 40) + 1000.0
  _, cov = lrg.moments(jnp.asarray(x, jnp.float32))
  assert cov.dtype == jnp.float32
  np.testing.assert_allclose(cov, np.cov(x.T, bias=True), rtol=1e-3, atol=1e-3)


@functools.partial(jax.jit, static_argnums=(3,))
def _ppca_em(params, mean, cov, iters):
  def body(p, _):
    p = ppca.em_step(p, mean, cov)
    return p, ppca.mean_log_likelihood(p, mean, cov)
  return jax.lax.scan(body, params, None, length=iters)


def test_ppca_em_converges_to_closed_form_monotonically():
  x = jnp.asarray(_data())
  mean, cov = lrg.moments(x)
  exact = ppca.fit(x, 3)
  params, lls = _ppca_em(ppca.random_init(jax.random.key(0), mean, cov, 3), mean, cov, 300)
  assert np.all(np.diff(np.asarray(lls)) >= -1e-10 * np.abs(lls[-1]))
  np.testing.assert_allclose(lls[-1], ppca.mean_log_likelihood(exact, mean, cov), rtol=1e-10)
  # W is identified up to a rotation: compare W W^T and sigma^2.
  np.testing.assert_allclose(params.w @ params.w.T, exact.w @ exact.w.T, atol=1e-8)
  np.testing.assert_allclose(params.sigma2, exact.sigma2, rtol=1e-8)
  # The closed form is the maximum: perturbing it lowers the likelihood.
  nudged = exact._replace(sigma2=exact.sigma2 * 1.01)
  assert ppca.mean_log_likelihood(nudged, mean, cov) < ppca.mean_log_likelihood(exact, mean, cov)


def test_ppca_posterior_matches_dense_gaussian_conditioning():
  x = jnp.asarray(_data(n=5))
  p = ppca.fit(jnp.asarray(_data()), 3)
  mean, cov = ppca.encode(p, x)
  # Joint of (z, x): cov(z) = I, cov(z, x) = W^T, cov(x) = C.
  c = ppca.covariance(p)
  np.testing.assert_allclose(mean, (p.w.T @ np.linalg.solve(c, (x - p.mu).T)).T, atol=1e-10)
  np.testing.assert_allclose(cov, np.eye(3) - p.w.T @ np.linalg.solve(c, p.w), atol=1e-10)
  np.testing.assert_allclose(ppca.log_prob(p, x), scipy.stats.multivariate_normal(p.mu, c).logpdf(x), rtol=1e-10)
  np.testing.assert_allclose(ppca.decode(p, mean), mean @ p.w.T + p.mu)


def test_noise_free_limit_is_orthogonal_projection():
  x = jnp.asarray(_data())
  p = ppca.fit(x, 3)
  tiny = p._replace(sigma2=jnp.asarray(1e-9))
  codes = ppca.pca_projection(p, x)
  np.testing.assert_allclose(ppca.encode(tiny, x)[0], codes, atol=1e-6)
  # The projection reconstructs as well as scikit-learn's PCA.
  pca = PCA(3).fit(np.asarray(x))
  recon = ppca.decode(p, codes)
  np.testing.assert_allclose(recon, pca.inverse_transform(pca.transform(np.asarray(x))), atol=1e-8)


@functools.partial(jax.jit, static_argnums=(3,))
def _fa_em(params, mean, cov, iters):
  def body(p, _):
    p = fa.em_step(p, mean, cov)
    return p, fa.mean_log_likelihood(p, mean, cov)
  return jax.lax.scan(body, params, None, length=iters)


def test_factor_analysis_matches_sklearn_at_convergence():
  x = _data(dim=6, k=2)
  n = x.shape[0]
  mean, cov = lrg.moments(jnp.asarray(x))
  params, lls = _fa_em(fa.init(jax.random.key(1), mean, cov, 2), mean, cov, 3000)
  assert np.all(np.diff(np.asarray(lls)) >= -1e-10 * np.abs(lls[-1]))
  theirs = FactorAnalysis(2, tol=1e-10, max_iter=20000).fit(x)
  np.testing.assert_allclose(jnp.sum(fa.log_prob(params, jnp.asarray(x))), theirs.score(x) * n, rtol=1e-4)
  np.testing.assert_allclose(params.psi, theirs.noise_variance_, rtol=1e-2)
  np.testing.assert_allclose(fa.covariance(params), theirs.get_covariance(), rtol=1e-2, atol=1e-3)


def _principal_angle(w, truth):
  return float(np.max(scipy.linalg.subspace_angles(np.asarray(w), np.asarray(truth))))


@functools.partial(jax.jit, static_argnums=(2,))
def _rppca_em(params, x, iters):
  def body(p, _):
    p = rppca.em_step(p, x)
    return p, jnp.sum(rppca.log_prob(p, x))
  return jax.lax.scan(body, params, None, length=iters)


def test_student_t_ppca_resists_gross_outliers():
  x, w_true, _ = synthetic.linear_with_outliers(np.random.default_rng(0), n=1000, dim=10, k=2,
                                                outlier_fraction=0.05, noise=0.1, outlier_scale=30.0)
  x = jnp.asarray(x)
  gaussian = ppca.fit(x, 2)
  start = rppca.init(x, 2)
  robust, lls = _rppca_em(start, x, 50)
  lls = np.asarray(lls)
  assert np.all(np.diff(lls) >= -1e-9 * np.abs(lls[-1]))  # EM is monotone
  angle_ppca = _principal_angle(gaussian.w, w_true)
  angle_robust = _principal_angle(robust.w, w_true)
  assert angle_robust * 5 <= angle_ppca, (angle_robust, angle_ppca)
  # Outliers get small weights.
  u, _ = rppca.expected_scales(robust, x)
  is_outlier = np.zeros(x.shape[0], bool)
  is_outlier[-50:] = True
  assert np.max(np.asarray(u)[is_outlier]) < np.min(np.asarray(u)[~is_outlier])


def test_student_t_log_prob_matches_scipy():
  x = jnp.asarray(_data(n=20))
  p = rppca.init(x, 3, nu=4.5)
  scale = lrg.covariance(p.w, jnp.broadcast_to(p.sigma2, p.mu.shape))
  expected = scipy.stats.multivariate_t(np.asarray(p.mu), np.asarray(scale), df=4.5).logpdf(np.asarray(x))
  np.testing.assert_allclose(rppca.log_prob(p, x), expected, rtol=1e-10)


def test_samples_have_model_moments():
  x = jnp.asarray(_data())
  n = 100_000
  p = ppca.fit(x, 3)
  _moments_match(ppca.sample(p, jax.random.key(0), n), p.mu, ppca.covariance(p))
  mean, cov = lrg.moments(x)
  f = fa.init(jax.random.key(2), mean, cov, 3)
  _moments_match(fa.sample(f, jax.random.key(1), n), f.mu, fa.covariance(f))
  # nu = 12 keeps fourth moments finite; heavy tails widen the error, hence the looser bound.
  t = rppca.init(x, 3, nu=12.0)
  _moments_match(rppca.sample(t, jax.random.key(2), n), t.mu, rppca.covariance(t), tol_sd=10.0)
