"""The loop's XLA compiler options (jgen/train/compile_options.py) reach its compiles on XLA:CPU: the train
step's convolutions go to Eigen rather than YNNPACK fusions, the init compiled at LLVM level 1 gives the same
parameters bit for bit, and an option named in XLA_FLAGS is left to it."""

import re

import jax
import numpy as np
import pytest

from jgen import config as config_lib
from jgen.train import compile_options, loop, sharding
from tests.helpers import config_path

DDPM = "configs/diffusion/ddpm_fashion_mnist.py:smoke"
CONV_VAE = "configs/vae/conv_fashion_mnist.py:smoke"  # convolutions, and a step that compiles in seconds


def _runner(spec=DDPM):
  runner = loop.Runner(config_lib.load(config_path(spec), []), devices=jax.devices()[:1])
  rng = np.random.default_rng(0)
  n, shape = runner.batch_size, runner.spec.shape
  batch = {"x": rng.integers(0, 256, (n, *shape)).astype(np.uint8), "label": rng.integers(0, 10, n).astype(np.int32)}
  runner.setup(batch)
  return runner, batch


def _ynn_convolutions(hlo: str) -> int:
  """How many YNNPACK fusions of the optimised HLO hold a convolution."""
  count = 0
  for m in re.finditer(r"kind=kCustom, calls=%([\w.\-]+),[^\n]*__ynn_fusion", hlo):
    body = re.search(r"^%" + re.escape(m.group(1)) + r" .*?^}", hlo, re.S | re.M).group(0)
    count += "convolution(" in body
  return count


def test_options_by_platform(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  assert compile_options.step_options("cpu") == compile_options.CPU_STEP
  assert compile_options.init_options("cpu") == compile_options.CPU_INIT
  assert compile_options.step_options("gpu") is None and compile_options.init_options("tpu") is None
  # An option XLA_FLAGS names is left to it.
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT")
  assert compile_options.step_options("cpu") is None
  monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=2")
  assert compile_options.init_options("cpu") is None


def test_step_convolutions_leave_ynnpack():
  runner, batch = _runner(CONV_VAE)
  state = runner.init(runner.init_key, sharding.put_batch(batch, runner.batch_sharding))
  flag = jax.device_put(jax.numpy.int32(0), runner.replicated)
  placed = runner.put_train_batch(batch)
  hlo = runner.step.lower(state, placed, flag).compile().as_text()
  assert "convolution(" in hlo
  assert _ynn_convolutions(hlo) == 0
  # Without the options, jaxlib 0.10 hands them to YNNPACK: the check above can see the difference.
  plain = jax.jit(loop._step_fn(runner.family, runner.train_key)).lower(state, placed, flag).compile().as_text()
  assert _ynn_convolutions(plain) > 0 or jax.__version_info__ >= (0, 11)


def test_init_options_keep_parameters_bit_identical():
  runner, batch = _runner()
  placed = sharding.put_batch(batch, runner.batch_sharding)
  with_options = runner.init(runner.init_key, placed)
  plain = jax.jit(lambda r, b: runner.family.init(r, loop.spec_lib.to_model_input(b)))(runner.init_key, placed)
  leaves, plain_leaves = jax.tree.leaves(with_options), jax.tree.leaves(plain)
  assert len(leaves) == len(plain_leaves) > 0
  for a, b in zip(leaves, plain_leaves):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_init_options_reach_the_compile(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setattr(compile_options, "CPU_INIT", {"xla_backend_optimization_level": "not-a-level"})
  # An option this jaxlib rejects is dropped (the loop then compiles with XLA's defaults) ...
  assert compile_options.init_options("cpu") is None
  # ... and one that gets past the check reaches the init's compile.
  monkeypatch.setattr(compile_options, "_for_cpu", compile_options._unset)
  runner, batch = _runner()
  with pytest.raises(Exception, match="xla_backend_optimization_level"):
    runner.init(runner.init_key, sharding.put_batch(batch, runner.batch_sharding))


def _conv_and_dot(x, w, *, scale):
  y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return scale * jax.numpy.sum(y.reshape(y.shape[0], -1) @ y.reshape(y.shape[0], -1).T)


def test_step_jit_compiles_like_the_step(monkeypatch):
  # The classical fits' jitted functions get the train step's options: the same compile as the loop's.
  monkeypatch.setenv("XLA_FLAGS", "")
  rng = np.random.default_rng(0)
  # Big enough that jaxlib 0.10 hands the convolution to YNNPACK by default.
  x, w = rng.normal(size=(16, 28, 28, 32)).astype(np.float32), rng.normal(size=(3, 3, 32, 32)).astype(np.float32)
  fn = compile_options.step_jit(static_argnames=("scale",))(_conv_and_dot)
  assert fn.__name__ == "_conv_and_dot"
  hlo = fn.lower(x, w, scale=2.0).compile().as_text()
  assert "convolution(" in hlo and _ynn_convolutions(hlo) == 0
  plain = jax.jit(_conv_and_dot, static_argnames=("scale",))
  assert _ynn_convolutions(plain.lower(x, w, scale=2.0).compile().as_text()) > 0 or jax.__version_info__ >= (0, 11)
  np.testing.assert_allclose(fn(x, w, scale=2.0), plain(x, w, scale=2.0), rtol=1e-4)
  # The options are looked up at the first use, so a function defined before them gets them.
  monkeypatch.setattr(compile_options, "CPU_STEP", {"xla_backend_optimization_level": "not-a-level"})
  monkeypatch.setattr(compile_options, "_for_cpu", compile_options._unset)
  late = compile_options.step_jit(_conv_and_dot, static_argnames=("scale",))
  with pytest.raises(Exception, match="xla_backend_optimization_level"):
    late(x, w, scale=2.0)
