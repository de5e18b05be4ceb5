"""Fit time of jgen's classical models against scikit-learn, in one run on one machine.

Each pair fits the same data from the same start with the same stopping rule,
and must reach the same final mean log-likelihood (relative 1e-4) for its time
to count. Cases:
  gmm_full   GMM, K = 10, full covariances, on 100,000 x 50 float32 data
  ppca       PPCA, k = 10 (closed form; scikit-learn's PCA) on the same data
  gmm_fmnist GMM, K = 10, diagonal covariances, on Fashion-MNIST (60,000 x 784, dequantized)
Both libraries get the same float32 array. jgen's functions are compiled before
timing (compile time printed separately); each timing is the minimum over
`--repeats` runs, alternating the two libraries so background load hits both.

  .venv/bin/python benchmarks/classical_fit.py [--repeats 3] [--cases gmm_full,ppca,gmm_fmnist]
"""

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from jgen.families.classical import gmm_fit  # noqa: E402
from jgen.families.classical import ppca  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
TOL, MAX_ITER = 1e-3, 100


def _mixture_data(n=100_000, dim=50, k=10, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(k, size=n)
  centers = rng.normal(size=(k, dim)) * 0.2  # close centres: the clusters differ mostly in shape
  mixing = rng.normal(size=(k, dim, dim)) / np.sqrt(dim)
  x = centers[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, dim)), mixing[labels])
  return x.astype(np.float32)


def _fmnist(seed=0):
  from jgen.data.idx import read_idx

  images = read_idx(FMNIST).reshape(-1, 784).astype(np.float32)
  u = np.random.default_rng(seed).uniform(size=images.shape).astype(np.float32)
  return (images + u) / 256.0  # uniform dequantization onto [0, 1]


def _timed(fn):
  start = time.perf_counter()
  out = fn()
  jax.block_until_ready(out)
  return time.perf_counter() - start, out


def _compare(name, jgen_fn, sk_fn, repeats):
  """Alternating timed runs of fns returning (mean log-likelihood or None, iterations); returns a result row."""
  compile_s, _ = _timed(jgen_fn)
  jgen_times, sk_times = [], []
  for _ in range(repeats):
    t, (jgen_ll, jgen_iters) = _timed(jgen_fn)
    jgen_times.append(t)
    t, (sk_ll, sk_iters) = _timed(sk_fn)
    sk_times.append(t)
  if jgen_ll is None:
    jgen_ll = sk_ll = rel = float("nan")
  else:
    jgen_ll, sk_ll = float(jgen_ll), float(sk_ll)
    rel = abs(jgen_ll - sk_ll) / abs(sk_ll)
  row = dict(case=name, jgen_s=min(jgen_times), sklearn_s=min(sk_times), ratio=min(sk_times) / min(jgen_times),
             jgen_ll=jgen_ll, sklearn_ll=sk_ll, rel_ll=rel, jgen_iters=int(jgen_iters), sklearn_iters=int(sk_iters),
             first_call_s=compile_s)
  print(f"{name:11s} jgen {row['jgen_s']:8.3f} s  sklearn {row['sklearn_s']:8.3f} s  sklearn/jgen {row['ratio']:6.1f}x  "
        f"mean ll {jgen_ll:.6f} vs {sk_ll:.6f} (rel {rel:.1e}{' MISMATCH' if rel >= 1e-4 else ''})  "
        f"iters {row['jgen_iters']}/{row['sklearn_iters']}  jgen first call (compile) {compile_s:.2f} s", flush=True)
  return row


def _gmm_case(name, x, k, cov_type, repeats):
  xj = jnp.asarray(x)
  start = gmm_fit.init_from_kmeans(jax.random.key(0), xj, k, cov_type)
  jax.block_until_ready(start)
  weights = np.asarray(start.weights, np.float64)
  cov = np.asarray(start.covariances, np.float64)
  precisions = np.linalg.inv(cov) if cov_type == "full" else 1.0 / cov

  def jgen_fn():
    _, ll, iters = gmm_fit.fit_from(start, xj, max_iter=MAX_ITER, tol=TOL)
    return ll, iters

  def sk_fn():
    model = GaussianMixture(k, covariance_type=cov_type, tol=TOL, max_iter=MAX_ITER, init_params="random_from_data",
                            weights_init=weights / weights.sum(), means_init=np.asarray(start.means, np.float64),
                            precisions_init=precisions, random_state=0)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", ConvergenceWarning)
      model.fit(x)
    return model.score(x), model.n_iter_

  return _compare(name, jgen_fn, sk_fn, repeats)


def _ppca_case(x, k, repeats):
  xj = jnp.asarray(x)
  fit = jax.jit(lambda a: ppca.fit(a, k))
  score = jax.jit(lambda p, a: jnp.mean(ppca.log_prob(p, a)))

  def jgen_fn():
    jax.block_until_ready(fit(xj))
    return None, 1

  def sk_fn():
    PCA(n_components=k).fit(x)
    return None, 1

  row = _compare("ppca", jgen_fn, sk_fn, repeats)
  # The likelihoods are compared outside the timed region (both scored at their fitted parameters).
  jgen_ll = float(score(fit(xj), xj))
  sk_ll = float(PCA(n_components=k).fit(x).score(x))
  row.update(jgen_ll=jgen_ll, sklearn_ll=sk_ll, rel_ll=abs(jgen_ll - sk_ll) / abs(sk_ll))
  print(f"{'':11s} mean ll {jgen_ll:.6f} vs {sk_ll:.6f} (rel {row['rel_ll']:.1e}"
        f"{'' if row['rel_ll'] < 1e-4 else ' MISMATCH'}; scikit-learn divides the covariance by N - 1)", flush=True)
  return row


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--cases", default="gmm_full,ppca,gmm_fmnist")
  args = parser.parse_args(argv)
  cases = args.cases.split(",")
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores; tol {TOL}, max_iter {MAX_ITER}",
        flush=True)
  rows = []
  if "gmm_full" in cases or "ppca" in cases:
    x = _mixture_data()
    if "gmm_full" in cases:
      rows.append(_gmm_case("gmm_full", x, 10, "full", args.repeats))
    if "ppca" in cases:
      rows.append(_ppca_case(x, 10, args.repeats))
  if "gmm_fmnist" in cases:
    rows.append(_gmm_case("gmm_fmnist", _fmnist(), 10, "diag", args.repeats))
  print("\n| case | jgen (s) | scikit-learn (s) | speed-up | mean log-lik jgen / sklearn | iterations |")
  print("| --- | --- | --- | --- | --- | --- |")
  for r in rows:
    print(f"| {r['case']} | {r['jgen_s']:.3f} | {r['sklearn_s']:.3f} | {r['ratio']:.1f}x | "
          f"{r['jgen_ll']:.4f} / {r['sklearn_ll']:.4f} | {r['jgen_iters']} / {r['sklearn_iters']} |")


if __name__ == "__main__":
  main()
