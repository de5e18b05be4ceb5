"""Injected outliers: the requested fraction, far from the data, the same on every read."""

import numpy as np

from jgen.data import sources
from jgen.data.outliers import OUTLIER_LABEL, WithOutliers


def test_outliers_fraction_place_and_determinism():
  clean = sources.load("toy2d_moons", "test")
  corrupted = WithOutliers(clean, fraction=0.05, scale=10.0, seed=3)
  n = len(clean)
  examples = corrupted.__getitems__(range(n))
  labels = np.array([int(e["label"]) for e in examples])
  flagged = labels == OUTLIER_LABEL
  assert abs(flagged.mean() - 0.05) < 0.01
  assert np.array_equal(flagged, [corrupted.is_outlier(i) for i in range(n)])
  x = np.stack([e["x"] for e in examples])
  clean_x = np.stack([clean[i]["x"] for i in range(n)])
  np.testing.assert_array_equal(x[~flagged], clean_x[~flagged])
  assert np.abs(x[flagged]).max() <= 10.0 and np.abs(x[flagged]).mean() > 2.0
  np.testing.assert_array_equal(corrupted[int(np.flatnonzero(flagged)[0])]["x"], x[flagged][0])
  other_seed = WithOutliers(clean, fraction=0.05, scale=10.0, seed=4)
  assert [other_seed.is_outlier(i) for i in range(200)] != [corrupted.is_outlier(i) for i in range(200)]
