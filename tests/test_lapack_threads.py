"""XLA:CPU's LAPACK (scipy's OpenBLAS) runs on one thread once the classical models are imported; numpy's
own BLAS keeps its threads, and an explicit threadpoolctl limit still overrides within its block."""

import threadpoolctl

import jgen.families.classical  # noqa: F401  (the import applies the limit)
from jgen import lapack_threads


def _threads():
  return {info["filepath"]: info["num_threads"] for info in threadpoolctl.threadpool_info()
          if info["user_api"] == "blas"}


def test_scipy_blas_on_one_thread_numpy_untouched():
  limited = lapack_threads.use_one_thread()
  threads = _threads()
  assert limited, "scipy's wheel ships its OpenBLAS; it should have been found"
  assert all(threads[path] == 1 for path in limited)
  others = [path for path in threads if path not in limited]
  assert all("scipy.libs" not in path for path in others)
  # An explicit limit reaches scipy's library within its block (n: numpy's untouched count, the cores
  # OpenBLAS found), and jgen's one thread comes back after it.
  n = max(threads.values())
  with threadpoolctl.threadpool_limits(n, user_api="blas"):
    assert all(count == n for count in _threads().values())
  assert all(_threads()[path] == 1 for path in limited)


def test_jax_lapack_calls_run_after_the_limit():
  import jax.numpy as jnp
  import numpy as np

  a = np.random.default_rng(0).normal(size=(40, 40))
  spd = a @ a.T + 40 * np.eye(40)
  np.testing.assert_allclose(np.asarray(jnp.linalg.cholesky(jnp.asarray(spd, jnp.float32))),
                             np.linalg.cholesky(spd), rtol=1e-4, atol=1e-4)
  assert all(_threads()[path] == 1 for path in lapack_threads.use_one_thread())


def test_no_scipy_openblas_found_changes_nothing(monkeypatch):
  # A scipy built against a system BLAS has no library in its own directory: nothing is limited.
  import scipy

  before = _threads()
  monkeypatch.setattr(scipy, "__file__", "/nonexistent/scipy/__init__.py")
  assert lapack_threads.use_one_thread.__wrapped__() == ()
  assert _threads() == before
