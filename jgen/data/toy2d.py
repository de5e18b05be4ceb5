"""Two-dimensional toy distributions for density models, all roughly of unit scale.

Each sampler is a pure function of (n, seed) so a dataset built from it is
reproducible. Where the distribution is a mixture, the label is the component
(which moon, which circle, which Gaussian, which checkerboard cell, which
pinwheel arm); the swiss roll has one component, label 0.
"""

import numpy as np

TOY2D_KINDS = ("moons", "circles", "8gaussians", "checkerboard", "swissroll", "pinwheel")

DESCRIPTIONS = {
    "moons": "two interleaving half circles (2 classes)",
    "circles": "two concentric circles of radii 1 and 0.5 (2 classes)",
    "8gaussians": "8 Gaussians with std 0.1 on a circle of radius sqrt(2) (8 classes)",
    "checkerboard": "uniform on the dark cells of a 4x4 board over [-2, 2]^2 (8 classes)",
    "swissroll": "a 2-D swiss roll spiral, scaled by 1/7",
    "pinwheel": "5 spiralling arms (5 classes)",
}
NUM_CLASSES = {"moons": 2, "circles": 2, "8gaussians": 8, "checkerboard": 8, "swissroll": 1, "pinwheel": 5}

# Shape parameters, public so tests and plots can check samples against them.
MOONS_NOISE = 0.05
MOONS_SHIFT = (0.5, 0.25)  # moves the pair of moons onto the origin
CIRCLES_NOISE = 0.05
CIRCLES_FACTOR = 0.5
GAUSSIANS_RADIUS = float(np.sqrt(2.0))
GAUSSIANS_STD = 0.1
SWISSROLL_NOISE = 0.25
SWISSROLL_SCALE = 1.0 / 7.0
PINWHEEL_ARMS = 5
PINWHEEL_RADIAL_STD = 0.3
PINWHEEL_TANGENTIAL_STD = 0.05
PINWHEEL_RATE = 0.25


def _sklearn_seed(rng: np.random.Generator) -> int:
  return int(rng.integers(2**31 - 1))


def _moons(n, rng):
  from sklearn.datasets import make_moons

  x, y = make_moons(n, noise=MOONS_NOISE, random_state=_sklearn_seed(rng))
  return x - np.asarray(MOONS_SHIFT), y


def _circles(n, rng):
  from sklearn.datasets import make_circles

  # sklearn labels the outer circle 0 and the inner circle 1.
  return make_circles(n, noise=CIRCLES_NOISE, factor=CIRCLES_FACTOR, random_state=_sklearn_seed(rng))


def _eight_gaussians(n, rng):
  labels = rng.integers(8, size=n)
  angles = 2 * np.pi * labels / 8
  centers = GAUSSIANS_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return centers + GAUSSIANS_STD * rng.standard_normal((n, 2)), labels


def _checkerboard(n, rng):
  # The 8 dark cells (column + row even) of unit squares tiling [-2, 2]^2.
  cells = rng.integers(8, size=n)
  row = cells // 2
  col = 2 * (cells % 2) + row % 2
  corner = np.stack([col, row], axis=1) - 2.0
  return corner + rng.uniform(size=(n, 2)), cells


def _swissroll(n, rng):
  from sklearn.datasets import make_swiss_roll

  x, _ = make_swiss_roll(n, noise=SWISSROLL_NOISE, random_state=_sklearn_seed(rng))
  # The roll lies in the (x, z) plane: (t cos t, t sin t) for t in [1.5 pi, 4.5 pi].
  return x[:, [0, 2]] * SWISSROLL_SCALE, np.zeros(n, np.int64)


def _pinwheel(n, rng):
  labels = rng.integers(PINWHEEL_ARMS, size=n)
  radial = 1.0 + PINWHEEL_RADIAL_STD * rng.standard_normal(n)
  tangential = PINWHEEL_TANGENTIAL_STD * rng.standard_normal(n)
  # Each arm bends more the further out it goes.
  angles = 2 * np.pi * labels / PINWHEEL_ARMS + PINWHEEL_RATE * np.exp(radial)
  cos, sin = np.cos(angles), np.sin(angles)
  points = np.stack([cos * radial - sin * tangential, sin * radial + cos * tangential], axis=1)
  return points, labels


_SAMPLERS = {
    "moons": _moons,
    "circles": _circles,
    "8gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "swissroll": _swissroll,
    "pinwheel": _pinwheel,
}


def sample_toy2d_with_labels(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """`n` points (float32 [n, 2]) of toy distribution `kind` and their component labels (int64 [n])."""
  if kind not in _SAMPLERS:
    raise ValueError(f"unknown toy 2-D kind {kind!r}; one of {', '.join(TOY2D_KINDS)}")
  points, labels = _SAMPLERS[kind](n, np.random.default_rng(seed))
  return np.asarray(points, np.float32), np.asarray(labels, np.int64)


def sample_toy2d(kind: str, n: int, seed: int) -> np.ndarray:
  """`n` points (float32 [n, 2]) of toy distribution `kind`, deterministic in `seed`."""
  return sample_toy2d_with_labels(kind, n, seed)[0]
