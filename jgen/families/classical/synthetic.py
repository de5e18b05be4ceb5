"""Synthetic data with known structure: a linear-Gaussian model with gross outliers, separated blobs."""

import numpy as np


def linear_with_outliers(rng, n, dim, k, outlier_fraction=0.05, noise=0.1, outlier_scale=10.0):
  """x = W z + eps with orthonormal W [dim, k]; the last fraction of rows replaced by outliers.

  Outliers are uniform in a cube `outlier_scale` times the data's scale.
  Returns (x [n, dim], W, is_outlier [n]).
  """
  w, _ = np.linalg.qr(rng.normal(size=(dim, k)))
  scales = np.linspace(2.0, 1.0, k)
  x = (rng.normal(size=(n, k)) * scales) @ w.T + noise * rng.normal(size=(n, dim))
  n_out = int(round(outlier_fraction * n))
  is_outlier = np.zeros(n, bool)
  if n_out:
    x[n - n_out:] = rng.uniform(-outlier_scale, outlier_scale, size=(n_out, dim))
    is_outlier[n - n_out:] = True
  return x, w, is_outlier


def blobs(rng, n_per, centers, std=0.5):
  """Isotropic Gaussian clusters around `centers` [K, D]; returns (x, labels)."""
  centers = np.asarray(centers, np.float64)
  x = np.concatenate([c + std * rng.normal(size=(n_per, centers.shape[1])) for c in centers])
  labels = np.repeat(np.arange(len(centers)), n_per)
  return x, labels
