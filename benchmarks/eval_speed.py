"""Time of each evaluation metric for 10,000 samples, with a peer implementation timed in the same run.

  .venv/bin/python benchmarks/eval_speed.py [--num-samples 10000] [--repeats 3]

Real Fashion-MNIST test images stand in for the model's samples, compared with a
training subset. Peers: FID through scipy.linalg.sqrtm (the usual recipe), k-NN
radii through scikit-learn's NearestNeighbors. The likelihood row times the IWAE
estimator (K = 100) on a 784-dimensional linear-Gaussian model, 10,000 examples.
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from sklearn.neighbors import NearestNeighbors

from jgen.eval import features, frechet, iwae, precision_recall, suite


def best_time(fn, repeats):
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - t0)
  return min(times), out


def scipy_fid(f1, f2):
  mu1, c1 = frechet.gaussian_statistics(f1)
  mu2, c2 = frechet.gaussian_statistics(f2)
  covmean = scipy.linalg.sqrtm(c1 @ c2).real
  return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean))


def sklearn_radii(f, k=3):
  dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(f).kneighbors(f)
  return dist[:, k]


class LinearGaussian:
  """z ~ N(0, I_16), x | z ~ N(W z, 0.1 I_784), q(z | x) the exact posterior widened by 1.5."""

  def __init__(self, dim_x=784, dim_z=16):
    self.w = jax.random.normal(jax.random.key(0), (dim_x, dim_z)) / 4
    m = self.w.T @ self.w + 0.1 * jnp.eye(dim_z)
    self.proj = jnp.linalg.solve(m, self.w.T).T  # x -> posterior mean
    self.chol = jnp.linalg.cholesky(1.5 ** 2 * 0.1 * jnp.linalg.inv(m))

  def log_importance_weights(self, state, x, rng, num_samples):
    mean = x @ self.proj
    eps = jax.random.normal(rng, (num_samples,) + mean.shape)
    z = mean + eps @ self.chol.T
    log_q = jax.scipy.stats.multivariate_normal.logpdf(z, mean, self.chol @ self.chol.T)
    log_prior = jax.scipy.stats.norm.logpdf(z).sum(-1)
    log_lik = jax.scipy.stats.norm.logpdf(x, z @ self.w.T, math.sqrt(0.1)).sum(-1)
    return log_prior + log_lik - log_q


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--num-samples", type=int, default=10000)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  n = args.num_samples
  test_x, _ = suite.load_split("fashion_mnist", "test", limit=n)
  train_x, _ = suite.load_split("fashion_mnist", "train", limit=n)
  net = features.load_feature_network()
  net(test_x[:net.batch_size])  # compile once outside the timings

  rows = []
  t_feat, f_real = best_time(lambda: net(test_x), args.repeats)
  f_fake = net(train_x)
  rows.append(("features (classifier forward, per set)", t_feat, None, ""))
  t_fid, fid = best_time(lambda: frechet.frechet_distance_of_features(f_real, f_fake), args.repeats)
  t_fid_peer, fid_peer = best_time(lambda: scipy_fid(f_real, f_fake), args.repeats)
  rows.append(("FID-FMNIST (statistics + eigh square root)", t_fid, t_fid_peer,
               f"scipy sqrtm; values {fid:.4f} vs {fid_peer:.4f}"))
  t_kid, _ = best_time(lambda: frechet.kernel_distance(f_real, f_fake), args.repeats)
  rows.append(("KID-FMNIST (50 subsets of 1000)", t_kid, None, ""))
  t_pr, _ = best_time(lambda: precision_recall.precision_recall(f_real, f_fake), args.repeats)
  t_radii, _ = best_time(lambda: precision_recall.knn_radii(f_real), args.repeats)
  t_radii_peer, _ = best_time(lambda: sklearn_radii(f_real), 1)
  rows.append(("precision/recall (k=3, both directions)", t_pr, None, ""))
  rows.append(("  of which k-NN radii of one set", t_radii, t_radii_peer, "sklearn NearestNeighbors"))

  model = LinearGaussian()
  x = jax.random.normal(jax.random.key(1), (n, 16)) @ model.w.T
  run = lambda: np.asarray(iwae.iwae_log_likelihood(model, None, [x[i:i + 500] for i in range(0, n, 500)],
                                                    jax.random.key(2), 100, 50))
  run()
  t_iwae, _ = best_time(run, args.repeats)
  rows.append(("IWAE K=100 (784-d linear Gaussian)", t_iwae, None, ""))

  device = jax.devices()[0]
  print(f"{n} samples on {jax.device_count()}x {device.device_kind} ({device.platform}); best of {args.repeats}")
  print("| metric | jgen (s) | peer (s) | peer / jgen | peer |")
  print("| --- | --- | --- | --- | --- |")
  for name, t, peer, note in rows:
    ratio = f"{peer / t:.1f}x" if peer else ""
    print(f"| {name} | {t:.2f} | {'' if peer is None else f'{peer:.2f}'} | {ratio} | {note} |")


if __name__ == "__main__":
  main()
