"""Outlier detection with generative models: a per-example typicality score, outlier image sets, AUROC.

A family's score of x is the most it declares about log p(x): its unnormalised
`score` (an EBM's -E(x), log p(x) up to the constant log Z) where it has one,
else its `log_prob` (exact, or a bound). Higher means "more like the training
data"; a good detector gives the in-distribution test set higher scores than
the outliers, AUROC 1 (0.5 is chance, below 0.5 the outliers look *more*
typical, as likelihood models famously find of simpler images).

Outlier sets for 28x28x1 images in [0, 1], each put on the 8-bit grid the
loader's images lie on (so discrete likelihoods see valid pixel values):
uniform noise, the test images inverted (1 - x), and scikit-learn's 8x8 digits
resized to 28x28.
"""

import jax
import jax.numpy as jnp
import numpy as np


def score_fn(family):
  """(state, x, rng) -> scores [B] of data as the loader gives it, higher = more typical."""
  if callable(getattr(family, "score", None)):
    return lambda state, x, rng: family.score(state, x)
  if family.likelihood:
    return family.log_prob
  raise ValueError(f"{family.config.model.name} declares neither a score nor a likelihood")


def score_kind(family) -> str:
  """What the score is, for tables: "-energy", "log p (exact)", "log p (lower_bound)"."""
  return "-energy (unnormalised)" if callable(getattr(family, "score", None)) else f"log p ({family.likelihood})"


def scores(family, state, x: np.ndarray, batch_size: int = 500, seed: int = 0) -> np.ndarray:
  """Scores of every example of `x`, in jitted batches (the last one padded), batch i with key fold_in(seed, i)."""
  fn = jax.jit(score_fn(family))
  key = jax.random.key(seed)
  out = []
  for i, start in enumerate(range(0, len(x), batch_size)):
    chunk = x[start:start + batch_size]
    n = len(chunk)
    if n < batch_size:
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, axis=0)])
    out.append(np.asarray(fn(state, jnp.asarray(chunk), jax.random.fold_in(key, i)))[:n])
  return np.concatenate(out)


def auroc(inlier_scores, outlier_scores) -> float:
  """P(score of a random inlier > score of a random outlier), ties counted half (the Mann-Whitney U / n m)."""
  from scipy.stats import rankdata

  a, b = np.asarray(inlier_scores, np.float64), np.asarray(outlier_scores, np.float64)
  ranks = rankdata(np.concatenate([a, b]))
  return float((ranks[:len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def to_8bit_grid(x) -> np.ndarray:
  return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0


def outlier_sets(test_images: np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
  """{"noise", "inverted", "digits"}: `n` outlier images each, [n, 28, 28, 1] in [0, 1] on the 8-bit grid."""
  from sklearn.datasets import load_digits

  rng = np.random.default_rng(seed)
  noise = rng.uniform(size=(n,) + test_images.shape[1:])
  inverted = 1.0 - test_images[:n]
  digits = load_digits().images[:n, :, :, None] / 16.0  # 1,797 images, values 0..16
  digits = np.asarray(jax.image.resize(jnp.asarray(digits), (len(digits),) + test_images.shape[1:], "linear"))
  return {name: to_8bit_grid(x) for name, x in (("noise", noise), ("inverted", inverted), ("digits", digits))}
