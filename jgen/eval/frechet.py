"""Frechet distance and kernel inception-style distance (KID) between two sets of features.

Everything here runs in float64 numpy: the Frechet distance subtracts traces of
similar size, so float32 loses the small distances that matter (a model close to
the data). Applied to jgen's Fashion-MNIST classifier features this is
"FID-FMNIST", which is not Inception FID and cannot be compared with papers' FID.
"""

import numpy as np


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean [F] and unbiased covariance [F,F] of features [N,F], in float64."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or f.shape[0] < 2:
    raise ValueError(f"need features [N,F] with N >= 2, got shape {f.shape}")
  return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix by eigendecomposition (negative round-off clipped)."""
  vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
  return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
  """tr((C1 C2)^{1/2}) computed as tr((C1^{1/2} C2 C1^{1/2})^{1/2}).

  C1 C2 is not symmetric, and a general matrix square root of it (scipy's sqrtm)
  returns complex round-off for near-singular covariances. The similar matrix
  C1^{1/2} C2 C1^{1/2} is symmetric PSD, so its eigenvalues are real and its
  square root's trace is the sum of their square roots.
  """
  root1 = _psd_sqrt(cov1)
  middle = root1 @ cov2 @ root1
  eig = np.linalg.eigvalsh((middle + middle.T) / 2)
  return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """Squared 2-Wasserstein distance between N(mu1, cov1) and N(mu2, cov2):

  |mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr((C1 C2)^{1/2}).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
  diff = mu1 - mu2
  value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2)
  return float(max(value, 0.0))  # exact zero can come out as -1e-12


def frechet_distance_of_features(features1, features2) -> float:
  """Frechet distance between Gaussians fitted to two feature sets [N1,F] and [N2,F]."""
  return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """k(x, y) = (x.y / F + 1)^3, the kernel of KID (Binkowski et al., 2018)."""
  return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased estimate of MMD^2 between samples x [m,F] and y [n,F] under the polynomial kernel."""
  m, n = x.shape[0], y.shape[0]
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2.0 * kxy.mean())


def kernel_distance(features1, features2, subset_size: int = 1000, num_subsets: int = 50,
                    seed: int = 0) -> tuple[float, float]:
  """KID: mean and standard deviation of unbiased MMD^2 over random subsets (without replacement in each).

  Unlike FID it is unbiased, so small sample counts do not inflate it; it can
  come out slightly negative when the sets match.
  """
  f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  size = min(subset_size, f1.shape[0], f2.shape[0])
  rng = np.random.default_rng(seed)
  values = [mmd2_unbiased(f1[rng.choice(f1.shape[0], size, replace=False)],
                          f2[rng.choice(f2.shape[0], size, replace=False)]) for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))
