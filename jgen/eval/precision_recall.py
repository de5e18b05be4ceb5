"""Precision and recall of generated samples with k-nearest-neighbour manifolds (Kynkaanniemi et al., 2019).

Each feature set defines a manifold: the union of balls around its points, each
ball's radius the distance to that point's k-th nearest neighbour in the same
set. Precision is the share of generated points inside the data manifold
(are samples realistic?); recall the share of data points inside the generated
manifold (is the data covered?).
"""

import numpy as np


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
  return np.maximum(d, 0.0)


def knn_radii(features, k: int = 3, chunk: int = 1024) -> np.ndarray:
  """Distance from each point [N,F] to its k-th nearest other point in the same set, shape [N]."""
  f = np.asarray(features, np.float64)
  if f.shape[0] <= k:
    raise ValueError(f"need more than k={k} points, got {f.shape[0]}")
  radii = np.empty(f.shape[0])
  for start in range(0, f.shape[0], chunk):
    d = _squared_distances(f[start:start + chunk], f)
    # column k of the sorted row: index 0 is the point itself at distance 0
    radii[start:start + chunk] = np.sqrt(np.partition(d, k, axis=1)[:, k])
  return radii


def manifold_coverage(points, manifold_points, manifold_radii, chunk: int = 1024) -> np.ndarray:
  """For each of `points` [N,F]: whether it lies in some ball (manifold_points [M,F], manifold_radii [M])."""
  p, m = np.asarray(points, np.float64), np.asarray(manifold_points, np.float64)
  r2 = np.asarray(manifold_radii, np.float64) ** 2
  inside = np.empty(p.shape[0], bool)
  for start in range(0, p.shape[0], chunk):
    inside[start:start + chunk] = (_squared_distances(p[start:start + chunk], m) <= r2[None, :]).any(1)
  return inside


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
  """(precision, recall) of fake features against real features, both [N,F]; use equal N for both."""
  real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
  precision = manifold_coverage(fake, real, knn_radii(real, k)).mean()
  recall = manifold_coverage(real, fake, knn_radii(fake, k)).mean()
  return float(precision), float(recall)
