"""Fit time of jgen's classical models against scikit-learn: same data, dtype, start, iterations and threads.

Cases:
  gmm_full     GMM, K = 10, full covariances, 100,000 x 50 synthetic data (close centres, random shapes)
  gmm_diag     GMM, K = 10, diagonal covariances, Fashion-MNIST train images (60,000 x 784, dequantized)
  ppca         PPCA, k = 10, closed form (scikit-learn: PCA, which picks its covariance-eigh solver here),
               on the same Fashion-MNIST data

What makes the comparison fair:
  * `--dtype` is the dtype of both sides: the data, scikit-learn's initial weights, means and precisions, and
    jgen's arrays (float64 turns on jax's x64 mode). The script checks the dtype scikit-learn's EM ran in
    from its fitted arrays and its per-sample log-probabilities.
  * Both GMMs start from the same k-means++ parameters and run exactly `--iters` EM iterations (tol = 0;
    the iteration counts are checked). Both fits end with one more E-step pass (scikit-learn's final E-step,
    jgen's final log-likelihood).
  * Only the fit is timed: scikit-learn's `score` is computed afterwards, and jgen's compile time is taken
    ahead of time (lower + compile) and reported in its own column.
  * `--threads N` limits both sides to N threads: the process is pinned to N cores before jax starts (XLA
    sizes its pool from them) and BLAS runs under threadpoolctl's limit. Default: every core. On a machine
    shared with other jobs, threads that wait by spinning can multiply a library's CPU time (OpenBLAS's
    most): compare `--threads 1` there.
  * Runs alternate between the libraries (`--repeats` rounds, the order flipping each round) and the
    table gives medians of wall time; process CPU seconds are printed too, since on a shared machine they
    move less than wall time.
The final mean log-likelihoods are printed side by side and must agree (relative `--rtol`); the script
exits with status 1 if they do not.

  .venv/bin/python benchmarks/classical_fit.py --dtype float32 [--threads 2] [--repeats 5] [--iters 10]
      [--cases gmm_full,gmm_diag,ppca]
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
CASES = ("gmm_full", "gmm_diag", "ppca")


def _parse(argv):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
  parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--iters", type=int, default=10, help="EM iterations of each GMM fit (both sides)")
  parser.add_argument("--cases", default=",".join(CASES))
  parser.add_argument("--rtol", type=float, default=None,
                      help="required agreement of the mean log-likelihoods (default 1e-4 float32, 1e-8 float64)")
  args = parser.parse_args(argv)
  args.cases = args.cases.split(",")
  unknown = sorted(set(args.cases) - set(CASES))
  if unknown:
    parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
  if args.rtol is None:
    args.rtol = 1e-4 if args.dtype == "float32" else 1e-8
  return args


ARGS = _parse(sys.argv[1:]) if __name__ == "__main__" else None
# Before jax starts: XLA sizes its thread pool from the cores this process may run on.
if ARGS is not None and ARGS.threads < len(os.sched_getaffinity(0)):
  os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:ARGS.threads])

import jax  # noqa: E402

if ARGS is not None:
  jax.config.update("jax_enable_x64", ARGS.dtype == "float64")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from jgen.families.classical import gmm_fit  # noqa: E402
from jgen.families.classical import ppca  # noqa: E402


def mixture_data(dtype, n=100_000, dim=50, k=10, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(k, size=n)
  centers = rng.normal(size=(k, dim)) * 0.2  # close centres: the clusters differ mostly in shape
  mixing = rng.normal(size=(k, dim, dim)) / np.sqrt(dim)
  x = centers[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, dim)), mixing[labels])
  return x.astype(dtype)


def fmnist(dtype, seed=0):
  """The 60,000 training images, flattened and dequantized uniformly onto [0, 1] (x = (k + u) / 256)."""
  from jgen.data.idx import read_idx

  images = read_idx(FMNIST).reshape(-1, 784).astype(np.float64)
  u = np.random.default_rng(seed).uniform(size=images.shape)
  return ((images + u) / 256.0).astype(dtype)


def _timed(fn):
  wall, cpu = time.perf_counter(), time.process_time()
  out = fn()
  jax.tree.map(lambda a: a.block_until_ready() if isinstance(a, jax.Array) else a, out)
  return time.perf_counter() - wall, time.process_time() - cpu, out


def _compare(name, jgen_fn, sk_fn, repeats):
  """Alternating timed runs; each fn returns its result. Returns the medians and the last results."""
  times = {"jgen": [], "sklearn": []}
  fns = {"jgen": jgen_fn, "sklearn": sk_fn}
  out = {}
  for r in range(repeats):
    for side in (("jgen", "sklearn") if r % 2 == 0 else ("sklearn", "jgen")):
      wall, cpu, out[side] = _timed(fns[side])
      times[side].append((wall, cpu))
      print(f"  {name} round {r + 1}: {side:7s} {wall:8.3f} s wall {cpu:8.3f} s cpu", flush=True)
  med = {side: np.median(np.asarray(t), axis=0) for side, t in times.items()}
  return med, out


def _sklearn_dtypes(model, x):
  """The dtypes scikit-learn's EM ran in: its fitted arrays and its per-sample log-probabilities."""
  arrays = (model.weights_, model.means_, model.covariances_, model.precisions_cholesky_,
            model._estimate_weighted_log_prob(x))
  return sorted({str(a.dtype) for a in arrays})


def gmm_case(name, x, k, cov_type, args):
  dtype = x.dtype
  xj = jnp.asarray(x)
  start = jax.block_until_ready(gmm_fit.init_from_kmeans(jax.random.key(0), xj, k, cov_type))
  assert all(a.dtype == dtype for a in start), "jgen's start is not in the requested dtype"
  weights = np.asarray(start.weights, np.float64)
  cov = np.asarray(start.covariances, np.float64)
  # scikit-learn takes precisions; they are inverted in float64 and then given in the benchmark's dtype.
  precisions = (np.linalg.inv(cov) if cov_type == "full" else 1.0 / cov).astype(dtype)
  weights = (weights / weights.sum()).astype(dtype)
  means = np.asarray(start.means)

  wall = time.perf_counter()
  fit = gmm_fit.fit_from.lower(start, xj, max_iter=args.iters, tol=0.0).compile()
  compile_s = time.perf_counter() - wall

  def jgen_fn():
    return fit(start, xj, max_iter=args.iters, tol=0.0)

  def sk_fn():
    model = GaussianMixture(k, covariance_type=cov_type, tol=0.0, max_iter=args.iters, weights_init=weights,
                            means_init=means, precisions_init=precisions)
    with warnings.catch_warnings(), threadpool_limits(args.threads):
      warnings.simplefilter("ignore", ConvergenceWarning)
      model.fit(x)
    return model

  med, out = _compare(name, jgen_fn, sk_fn, args.repeats)
  _, jgen_ll, jgen_iters = out["jgen"]
  model = out["sklearn"]
  sk_dtypes = _sklearn_dtypes(model, x)
  return dict(case=name, med=med, compile_s=compile_s, jgen_ll=float(jgen_ll), sklearn_ll=float(model.score(x)),
              iters=f"{int(jgen_iters)} / {model.n_iter_}", ok_iters=int(jgen_iters) == model.n_iter_ == args.iters,
              sk_dtype=",".join(sk_dtypes))


def ppca_case(name, x, k, args):
  xj = jnp.asarray(x)
  wall = time.perf_counter()
  fit = jax.jit(lambda a: ppca.fit(a, k)).lower(xj).compile()
  compile_s = time.perf_counter() - wall

  def sk_fn():
    with threadpool_limits(args.threads):
      return PCA(n_components=k).fit(x)

  med, out = _compare(name, lambda: fit(xj), sk_fn, args.repeats)
  params, model = out["jgen"], out["sklearn"]
  jgen_ll = float(jax.jit(lambda p, a: jnp.mean(ppca.log_prob(p, a)))(params, xj))
  return dict(case=name, med=med, compile_s=compile_s, jgen_ll=jgen_ll, sklearn_ll=float(model.score(x)),
              iters="closed form", ok_iters=True,
              sk_dtype=f"{model.components_.dtype} ({model._fit_svd_solver})")


DESCRIPTIONS = {
    "gmm_full": "GMM, K = 10, full, 100,000 x 50",
    "gmm_diag": "GMM, K = 10, diagonal, Fashion-MNIST 60,000 x 784",
    "ppca": "PPCA, k = 10, Fashion-MNIST 60,000 x 784",
}


def main(args=None):
  args = args or ARGS
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.threads} thread(s) of "
        f"{os.cpu_count()} cores; dtype {args.dtype}; {args.iters} EM iterations; {args.repeats} rounds", flush=True)
  rows = []
  if "gmm_full" in args.cases:
    rows.append(gmm_case("gmm_full", mixture_data(args.dtype), 10, "full", args))
  if "gmm_diag" in args.cases or "ppca" in args.cases:
    x = fmnist(args.dtype)
    if "gmm_diag" in args.cases:
      rows.append(gmm_case("gmm_diag", x, 10, "diag", args))
    if "ppca" in args.cases:
      rows.append(ppca_case("ppca", x, 10, args))
  ok = True
  print(f"\ndtype {args.dtype} on both sides, {args.threads} thread(s) each; medians of {args.repeats} alternating "
        f"rounds; speed-up = scikit-learn wall / jgen wall\n")
  print("| case | jgen (s) | scikit-learn (s) | speed-up | CPU s jgen / sklearn (ratio) | jgen compile (s) "
        "| mean log-lik jgen / sklearn (rel. diff) | iterations | scikit-learn ran in |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  for r in rows:
    (jw, jc), (sw, sc) = r["med"]["jgen"], r["med"]["sklearn"]
    rel = abs(r["jgen_ll"] - r["sklearn_ll"]) / abs(r["sklearn_ll"])
    bad = rel >= args.rtol or not r["ok_iters"]
    ok = ok and not bad
    ll = f"{r['jgen_ll']:.6f} / {r['sklearn_ll']:.6f} ({rel:.1e}){' MISMATCH' if bad else ''}"
    cpu = f"{jc:.2f} / {sc:.2f} ({sc / jc:.1f}x)"
    print(f"| {DESCRIPTIONS[r['case']]} | {jw:.3f} | {sw:.3f} | {sw / jw:.1f}x | {cpu} | {r['compile_s']:.2f} | {ll} | "
          f"{r['iters']} | {r['sk_dtype']} |")
  if not ok:
    print(f"\nlog-likelihoods differ by more than rtol {args.rtol:g} (or iteration counts differ): the times do not "
          "compare equal work", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  main()
