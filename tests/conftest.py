"""Test setup: 8 CPU devices so sharding tests can build a data-parallel mesh, and one compilation cache per run."""

import importlib.util
import logging
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)

import orbax.checkpoint as ocp  # noqa: E402

# Orbax saves a replicated array in slices, one per replica, unless JAX_PLATFORMS names a GPU: on the tests' 8
# CPU devices every save compiled one slice program per array shape (~1,500 compiles, ~50 worker-seconds of
# the suite) to write the same bytes. The tests save as orbax does on GPUs, one replica writing each array.
_arrays = ocp.type_handlers.get_type_handler(jax.Array)
logging.getLogger("absl").setLevel(logging.ERROR)  # orbax logs a warning on an override
ocp.type_handlers.register_type_handler(jax.Array, ocp.type_handlers.ArrayHandler(
    use_replica_parallel=False, array_metadata_store=_arrays._array_metadata_store), override=True)
logging.getLogger("absl").setLevel(logging.NOTSET)


import pytest  # noqa: E402

_OWN_CACHE = "JGEN_TEST_OWNS_XLA_CACHE"


def pytest_configure(config):
  """One jax persistent compilation cache for the whole run, in a fresh temporary directory.

  Most of the suite's time is XLA compiling, and many tests compile the same program: a config's smoke run,
  the 1-device half of its sharding-equivalence run, each process of a resume test, the CLI tests. The
  directory is made by the first pytest process (the xdist controller, or the only process) and reaches the
  workers and the `jgen` processes the tests start through the environment; an entry is keyed by the whole
  program, its compile options and the devices, so a hit is the same executable a compile would give. A cache
  the user set (JAX_COMPILATION_CACHE_DIR) is used as it is and left alone.
  """
  if importlib.util.find_spec("filelock") is None:  # a dependency of jgen: without its lock, no shared cache
    return
  if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jgen-test-xla-")
    os.environ[_OWN_CACHE] = str(os.getpid())
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
  # A size limit turns on the cache's file lock (the `filelock` package), so no process reads an entry half
  # written (jax would warn on stderr, which the CLI tests read).
  os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 << 30))
  # jax read its flags from the environment when conftest imported it, before the lines above.
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update("jax_persistent_cache_min_compile_time_secs",
                    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
  jax.config.update("jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))


def pytest_unconfigure(config):
  if os.environ.get(_OWN_CACHE) == str(os.getpid()):
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A TFDS data directory of its own for the data tests (datasets prepared into it once per worker)."""
  return str(tmp_path_factory.mktemp("jgen_tfds"))
