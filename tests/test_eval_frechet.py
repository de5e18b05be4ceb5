"""Frechet distance, KID and k-NN precision/recall against closed forms and brute-force references."""

import numpy as np
import scipy.linalg
from sklearn.metrics.pairwise import polynomial_kernel
from sklearn.neighbors import NearestNeighbors

from jgen.eval import frechet, precision_recall


def _random_cov(rng, d, rank=None):
  a = rng.normal(size=(d, rank or d))
  return a @ a.T / (rank or d) + (0.0 if rank else 0.1) * np.eye(d)


def test_frechet_distance_of_gaussians_matches_closed_forms():
  rng = np.random.default_rng(0)
  # 1-D: (m1 - m2)^2 + (s1 - s2)^2
  assert np.isclose(frechet.frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]), 9.0 + 1.0)
  # diagonal covariances commute: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
  a, b = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
  assert np.isclose(frechet.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), expected, rtol=1e-10)
  # full covariances: the textbook formula with scipy's general matrix square root
  c1, c2 = _random_cov(rng, 8), _random_cov(rng, 8)
  m1, m2 = rng.normal(size=8), rng.normal(size=8)
  expected = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
  assert np.isclose(frechet.frechet_distance(m1, c1, m2, c2), expected, rtol=1e-8)
  # a distance: symmetric, and zero only for equal Gaussians
  assert np.isclose(frechet.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)),
                    frechet.frechet_distance(mu2, np.diag(b), mu1, np.diag(a)))
  assert frechet.frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) < 1e-10


def test_trace_sqrt_is_stable_for_singular_covariances():
  rng = np.random.default_rng(1)
  c1, c2 = _random_cov(rng, 32, rank=5), _random_cov(rng, 32, rank=7)  # both rank-deficient
  value = frechet.trace_sqrt_product(c1, c2)
  eig = np.linalg.eigvals(c1 @ c2)  # real and >= 0 up to round-off
  assert np.isclose(value, np.sqrt(np.clip(eig.real, 0, None)).sum(), rtol=1e-6)
  assert frechet.frechet_distance(np.zeros(32), c1, np.zeros(32), c1) < 1e-8


def test_fid_of_features_self_zero_order_invariant_and_consistent():
  rng = np.random.default_rng(2)
  f = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16)) + 3.0
  g = rng.normal(size=(400, 16)) * 1.5
  assert frechet.frechet_distance_of_features(f, f) < 1e-8
  fid = frechet.frechet_distance_of_features(f, g)
  assert np.isclose(frechet.frechet_distance_of_features(f[rng.permutation(500)], g[rng.permutation(400)]), fid,
                    rtol=1e-10)
  np.testing.assert_allclose(frechet.gaussian_statistics(f)[1], np.cov(f.T))
  # float32 inputs give the same value: statistics are taken in float64
  assert np.isclose(frechet.frechet_distance_of_features(f.astype(np.float32), g.astype(np.float32)), fid,
                    rtol=1e-5)
  # shifting one set by a vector adds exactly its squared norm
  shift = rng.normal(size=16)
  assert np.isclose(frechet.frechet_distance_of_features(f + shift, f), shift @ shift, rtol=1e-8)


def test_kid_matches_brute_force_and_is_near_zero_for_same_distribution():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(60, 5)), rng.normal(size=(50, 5)) + 0.5
  kxx = polynomial_kernel(x, x, degree=3, gamma=1 / 5, coef0=1)
  kyy = polynomial_kernel(y, y, degree=3, gamma=1 / 5, coef0=1)
  kxy = polynomial_kernel(x, y, degree=3, gamma=1 / 5, coef0=1)
  off = lambda k: k[~np.eye(len(k), dtype=bool)].mean()
  assert np.isclose(frechet.mmd2_unbiased(x, y), off(kxx) + off(kyy) - 2 * kxy.mean(), rtol=1e-10)
  same_mean, _ = frechet.kernel_distance(rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)),
                                         subset_size=500, num_subsets=20)
  shifted_mean, _ = frechet.kernel_distance(rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)) + 0.5,
                                            subset_size=500, num_subsets=20)
  assert abs(same_mean) < 0.02 < shifted_mean


def test_knn_radii_match_sklearn():
  rng = np.random.default_rng(4)
  f = rng.normal(size=(300, 6))
  dist, _ = NearestNeighbors(n_neighbors=4).fit(f).kneighbors(f)  # includes the point itself
  np.testing.assert_allclose(precision_recall.knn_radii(f, k=3, chunk=64), dist[:, 3], rtol=1e-6)


def test_precision_recall_on_known_configurations():
  rng = np.random.default_rng(5)
  real = rng.normal(size=(1000, 4))
  assert precision_recall.precision_recall(real, real) == (1.0, 1.0)
  # samples far from the data: neither realistic nor covering
  assert precision_recall.precision_recall(real, real + 100.0) == (0.0, 0.0)
  # mode collapse onto 50 training points: precise, but covers only those points
  collapsed = np.repeat(real[:50], 20, axis=0) + 1e-3 * rng.normal(size=(1000, 4))
  precision, recall = precision_recall.precision_recall(real, collapsed)
  assert precision > 0.95 and recall < 0.1
  # a hand-checked 1-D case (k=1): real {0, 1, 5} has radii {1, 1, 4}; fake {0.5, 3, 10} has radii {2.5, 2.5, 7}
  r, f = np.array([[0.0], [1.0], [5.0]]), np.array([[0.5], [3.0], [10.0]])
  p, rec = precision_recall.precision_recall(r, f, k=1)
  assert np.isclose(p, 2 / 3) and np.isclose(rec, 1.0)
