"""XLA compiler options the loop gives its jitted functions, per platform.

On XLA:CPU (jaxlib 0.10), measured on the DDPM U-Net `full` config (configs/diffusion/ddpm_fashion_mnist.py,
batch 128, 867 GFLOP a step; 2 shared cores; benchmarks/compile_time.py):

- the train and eval steps (and, through `step_jit`, the samplers and evaluations) leave convolutions to XLA's
  Eigen kernels instead of YNNPACK fusions
  (`xla_cpu_experimental_ynn_fusion_type`: YNNPACK keeps its dots). YNNPACK's weight-gradient convolutions
  (a 28x28 window over the batch) ran at ~5 GFLOP/s: the step took 53-82 s with them, 22-31 s without, and
  compiled no slower. Results differ from YNNPACK's in the last bits (a different summation order), the same
  on every run and resume;
- the init, which runs once, is compiled at LLVM level 1 (`xla_backend_optimization_level`): 19-24 s of
  compiling became 13-14 s, with parameters bit-identical to level 2's (level 0 compiles in 8-9 s but moves
  some parameters by one ulp, so it is not used).

Other platforms get no options. An option already named in XLA_FLAGS is left to it: setting
`--xla_cpu_experimental_ynn_fusion_type=` there to LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT and
LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION (comma-separated) restores YNNPACK's convolutions.

A second run (or resume) of the same config reads its compiled programs back from jax's persistent
compilation cache, which jgen's commands keep (jgen/train/compile_cache.py; the options above are part of
its key).
"""

import functools
import os

import jax
import jax.numpy as jnp

# YNNPACK for dots only: convolutions go to Eigen.
CPU_STEP = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
# LLVM -O1 for code that runs once; bit-identical parameters to -O2, measured.
CPU_INIT = {"xla_backend_optimization_level": 1}


def _unset(options: dict) -> dict | None:
  """`options` less those XLA_FLAGS already sets; None when nothing is left (jit's default)."""
  flags = os.environ.get("XLA_FLAGS", "")
  left = {k: v for k, v in options.items() if f"--{k}=" not in flags}
  return left or None


@functools.cache
def _accepted(options: tuple) -> bool:
  """Whether this jaxlib's XLA:CPU compiles with `options`: the YNNPACK option is experimental, and a jaxlib
  that drops it should train with its defaults rather than fail every compile."""
  try:
    x = jax.device_put(jnp.zeros((), jnp.float32), jax.devices("cpu")[0])
    jax.jit(lambda x: x + 1).lower(x).compile(dict(options))
    return True
  except Exception:  # noqa: BLE001 (XLA reports an unknown option or value in several exception types)
    return False


def _for_cpu(options: dict) -> dict | None:
  left = _unset(options)
  return left if left and _accepted(tuple(sorted(left.items()))) else None


def step_options(platform: str) -> dict | None:
  """Compiler options for the train and eval steps on `platform` ("cpu", "gpu", "tpu")."""
  return _for_cpu(CPU_STEP) if platform == "cpu" else None


def init_options(platform: str) -> dict | None:
  """Compiler options for the jitted init (run once) on `platform`."""
  return _for_cpu(CPU_INIT) if platform == "cpu" else None


class StepJit:
  """`jax.jit(fun, **jit_kwargs)` compiled with the train step's options for the default backend's platform.

  For jitted functions outside the loop's steps: the samplers, the evaluations (likelihoods, IWAE, the FID
  network's features, latent maps) and the classical models' EM fits. On XLA:CPU Eigen's convolutions serve a
  forward pass better too: DDIM-50 with the U-Net `cpu` config drew 12.6-13.1 images/s against 7.6-8.0 with
  YNNPACK's (benchmarks/README.md, "Samplers and evaluations"). The platform is looked up
  at the first call or `lower`, not when the function is defined: that would start jax's backends at import.
  """

  def __init__(self, fun, **jit_kwargs):
    self._fun, self._jit_kwargs = fun, jit_kwargs
    functools.update_wrapper(self, fun)

  @functools.cached_property
  def jitted(self):
    return jax.jit(self._fun, compiler_options=step_options(jax.default_backend()), **self._jit_kwargs)

  def __call__(self, *args, **kwargs):
    return self.jitted(*args, **kwargs)

  def lower(self, *args, **kwargs):
    return self.jitted.lower(*args, **kwargs)


def step_jit(fun=None, **jit_kwargs):
  """Decorator form of `StepJit`: `@step_jit` or `@step_jit(static_argnames=...)`."""
  if fun is None:
    return functools.partial(StepJit, **jit_kwargs)
  return StepJit(fun, **jit_kwargs)
