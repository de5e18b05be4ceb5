"""Test setup: 8 CPU devices so sharding tests can build a data-parallel mesh."""

import os

os.environ.setdefault("XLA_FLAGS", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A TFDS data directory of its own for the data tests (datasets prepared into it once per worker)."""
  return str(tmp_path_factory.mktemp("jgen_tfds"))
