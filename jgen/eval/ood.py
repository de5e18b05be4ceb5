"""Outlier detection with generative models: a per-example typicality score, outlier image sets, AUROC.

A family's score of x is the most it declares about log p(x): its unnormalised
`score` (an EBM's -E(x), log p(x) up to the constant log Z) where it has one,
else its `log_prob` (exact, or a bound). Higher means "more like the training
data"; a good detector gives the in-distribution test set higher scores than
the outliers, AUROC 1 (0.5 is chance, below 0.5 the outliers look *more*
typical, as likelihood models famously find of simpler images). With K
importance samples, latent-variable families score the IWAE estimate instead.

Outlier sets shaped like the test images (28x28x1 for Fashion-MNIST) in [0, 1],
each put on the 8-bit grid the loader's images lie on (so discrete likelihoods
see valid pixel values): uniform noise, the test images inverted (1 - x), and
scikit-learn's 8x8 digits resized to the images' shape; for 2-D points, uniform
noise over the data's box.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jgen.eval import iwae
from jgen.train.compile_options import step_jit


def score_fn(family):
  """(state, x, rng) -> scores [B] of data as the loader gives it, higher = more typical."""
  if callable(getattr(family, "score", None)):
    return lambda state, x, rng: family.score(state, x)
  if family.likelihood:
    return family.log_prob
  raise ValueError(f"{family.config.model.name} declares neither a score nor a likelihood")


def score_kind(family, iwae_samples: int | None = None) -> str:
  """What the score is, for tables: "-energy (unnormalised)", "log p (exact)", "log p (lower bound)",
  "log p (IWAE, K=...)"."""
  if iwae_samples:
    return f"log p (IWAE, K={iwae_samples})"
  if callable(getattr(family, "score", None)):
    return "-energy (unnormalised)"
  return f"log p ({(family.likelihood or 'none').replace('_', ' ')})"


def iwae_score_fn(family, num_samples: int, chunk_size: int = 100):
  """(state, x, rng) -> the IWAE estimate of log p(x) [B] with K = `num_samples`, x as the loader gives it."""
  if not getattr(family, "importance_weights", False):
    raise ValueError(f"{family.config.model.name} declares no importance weights; the IWAE estimate needs them")

  def fn(state, x, rng):
    prep_rng, rng = jax.random.split(rng)  # as iwae.iwae_log_likelihood: one preparation for all K draws
    return iwae.chunked_log_mean_exp(family.log_importance_weights, state, family.prepare_data(x, prep_rng), rng,
                                     num_samples, chunk_size)
  return fn


def scores(family, state, x: np.ndarray, batch_size: int = 500, seed: int = 0,
           iwae_samples: int | None = None) -> np.ndarray:
  """Scores of every example of `x`, in jitted batches (the last one padded), batch i with key fold_in(seed, i);
  with `iwae_samples` K, the IWAE estimate. Binary-likelihood families score the fixed binarization of `x`
  (`suite.test_set_protocol`), as `jgen evaluate` does."""
  from jgen.eval.suite import test_set_protocol

  fn = step_jit(iwae_score_fn(family, iwae_samples) if iwae_samples else score_fn(family))
  x = test_set_protocol(family, np.asarray(x))
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


OUTLIER_SETS = ("noise", "inverted", "digits")


def outlier_set(name: str, test_images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
  """One outlier set of `OUTLIER_SETS` shaped like `test_images` [N, H, W, C] (digits: at most 1,797), in [0, 1]
  on the 8-bit grid. Points [N, D] have only "noise": uniform over the box of `test_images`, 10 % wider."""
  if test_images.ndim == 2:
    if name != "noise":
      raise ValueError(f"outlier set {name!r} is for images; points have only 'noise'")
    low, high = test_images.min(0), test_images.max(0)
    pad = 0.05 * (high - low)
    return np.random.default_rng(seed).uniform(low - pad, high + pad, (n,) + test_images.shape[1:]).astype(np.float32)
  if name == "noise":
    x = np.random.default_rng(seed).uniform(size=(n,) + test_images.shape[1:])
  elif name == "inverted":
    x = 1.0 - test_images[:n]
  elif name == "digits":
    from sklearn.datasets import load_digits

    digits = load_digits().images[:n, :, :, None] / 16.0  # 1,797 images, values 0..16
    x = np.asarray(jax.image.resize(jnp.asarray(digits), (len(digits),) + test_images.shape[1:], "linear"))
  else:
    raise ValueError(f"unknown outlier set {name!r}; one of {', '.join(OUTLIER_SETS)}")
  return to_8bit_grid(x)


def outlier_sets(test_images: np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
  """{"noise", "inverted", "digits"}: `n` outlier images each, [n, 28, 28, 1] in [0, 1] on the 8-bit grid."""
  return {name: outlier_set(name, test_images, n, seed) for name in OUTLIER_SETS}
