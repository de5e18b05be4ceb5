"""Gross outliers injected into a training split, for robust models (`data.outlier_fraction`).

Each example is replaced, with probability `fraction`, by a point drawn uniformly
from the box [-scale, scale]^D, labelled -1. Which examples and where they go is a
function of (seed, index) alone, so every epoch, process and resumed run sees the
same corrupted dataset.
"""

import numpy as np

OUTLIER_LABEL = -1


class WithOutliers:
  """A random-access source whose examples are sometimes replaced by gross outliers."""

  def __init__(self, source, fraction: float, scale: float, seed: int = 0):
    if not 0.0 <= fraction < 1.0:
      raise ValueError(f"outlier fraction must be in [0, 1), got {fraction}")
    self._source, self.fraction, self.scale, self.seed = source, fraction, scale, seed

  def __len__(self) -> int:
    return len(self._source)

  def _rng(self, index: int) -> np.random.Generator:
    return np.random.default_rng((self.seed, int(index)))

  def is_outlier(self, index: int) -> bool:
    return bool(self._rng(index).random() < self.fraction)

  def _replace(self, index: int, example: dict) -> dict:
    rng = self._rng(index)
    if rng.random() >= self.fraction:
      return example
    x = np.asarray(example["x"])
    point = rng.uniform(-self.scale, self.scale, size=x.shape).astype(x.dtype)
    return {"x": point, "label": np.asarray(OUTLIER_LABEL, np.asarray(example["label"]).dtype)}

  def __getitem__(self, index: int) -> dict:
    return self._replace(index, self._source[index])

  def __getitems__(self, indices):
    indices = list(indices)
    if hasattr(self._source, "__getitems__"):
      examples = self._source.__getitems__(indices)
    else:
      examples = [self._source[i] for i in indices]
    return [self._replace(i, e) for i, e in zip(indices, examples)]
