"""XLA:CPU's LAPACK calls on one thread, so that they leave the cores to XLA.

On CPU, jaxlib runs Cholesky factorizations, triangular solves, eigendecompositions and the like by calling
LAPACK through scipy's `cython_lapack`, that is, in the OpenBLAS that scipy ships. With more than one thread,
OpenBLAS's worker threads keep spinning for a while after each call, waiting for more work, and XLA's own
thread pool then shares the cores with them. A GMM's EM iteration (a Cholesky and a triangular solve of K
small matrices, then one pass over the data) lost most of a core to them for the whole pass: 100,000 x 50,
K = 10, full covariances, float32, 2 cores: 0.19 s and 0.35 CPU-s per iteration with two OpenBLAS threads,
0.13 s and 0.24 CPU-s with one (benchmarks/README.md, "Classical fits"). The matrices jgen hands to LAPACK
are small (at most D x D), so one thread costs them little.

`use_one_thread()` limits the OpenBLAS libraries loaded from scipy's directory (not numpy's, which numpy's own
products use) and does nothing where there is none (a scipy built against a system BLAS). The classical
models call it when imported, and the registry imports every family, so every `jgen` command runs with it.
An explicit `threadpoolctl.threadpool_limits(...)` still overrides it within its block, as
benchmarks/classical_fit.py does for scikit-learn.
"""

import functools
import os

import scipy.linalg.cython_lapack  # noqa: F401  (loads the library XLA:CPU's LAPACK kernels call)
import threadpoolctl


def scipy_blas_paths(controller: threadpoolctl.ThreadpoolController) -> list[str]:
  """The BLAS libraries loaded from scipy's own directory (a wheel's `scipy.libs`)."""
  scipy_dir = os.path.dirname(os.path.abspath(scipy.__file__))
  in_scipy = lambda path: os.path.dirname(path) in (scipy_dir, scipy_dir + ".libs")
  return [lib.filepath for lib in controller.lib_controllers if lib.user_api == "blas" and in_scipy(lib.filepath)]


@functools.cache
def use_one_thread() -> tuple[str, ...]:
  """Runs scipy's BLAS (XLA:CPU's LAPACK) on one thread from now on; returns the libraries limited."""
  controller = threadpoolctl.ThreadpoolController()
  paths = scipy_blas_paths(controller)
  if paths:
    controller.select(filepath=paths).limit(limits=1)
  return tuple(paths)
