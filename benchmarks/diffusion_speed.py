"""Speed of the diffusion family on this machine: the jitted train step and DDIM sampling.

  .venv/bin/python benchmarks/diffusion_speed.py [CONFIG[:VARIANT]] [--set key=value ...]
      [--batch N] [--train-steps N] [--sample-n N] [--sample-steps 50] [--guidance 0]
      [--peak-tflops P]

Defaults: configs/diffusion/ddpm_fashion_mnist.py:full, its batch size, 20 timed train
steps, DDIM-50 on 256 images. The family is built from the config and run on random
data of the dataset's shape (the data pipeline is not timed), on one device, jitted with
the loop's compiler options (`jgen.train.compile_options`, as jgen's train step and
sampler are; on XLA:CPU, Eigen's convolutions instead of YNNPACK's). Compile time is
printed separately; timings start after a warm-up call.

FLOPs of one train step come from XLA's cost analysis of the compiled step
(`jitted.lower(...).compile().cost_analysis()`); achieved TFLOP/s divides them by
the measured step time, and MFU divides that by the device's dense bfloat16 peak
(a table for common GPUs, or --peak-tflops). On CPU there is no peak and no MFU.
A DDIM step is one U-Net forward (two with --guidance > 0: conditional and
unconditional branches in one doubled batch).
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jgen import config as config_lib  # noqa: E402
from jgen import registry  # noqa: E402
from jgen.data import sources  # noqa: E402
from jgen.train import compile_options  # noqa: E402

# Dense (no sparsity) bfloat16 tensor-core peaks in TFLOP/s, by `device_kind` prefix.
BF16_PEAK_TFLOPS = {
    "NVIDIA H200": 989.4,
    "NVIDIA H100 80GB HBM3": 989.4,  # SXM
    "NVIDIA H100 PCIe": 756.0,
    "NVIDIA H100": 989.4,
    "NVIDIA A100": 312.0,
    "NVIDIA L4": 121.0,
    "NVIDIA A10G": 70.0,
}


def peak_tflops(device, override):
  if override:
    return override
  for prefix, peak in BF16_PEAK_TFLOPS.items():
    if device.device_kind.startswith(prefix):
      return peak
  return None


def flops_of(compiled):
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax returns one dict per computation
    cost = cost[0] if cost else {}
  return float(cost.get("flops", 0.0)) if cost else 0.0


def timed(fn, *args, repeats):
  """Seconds per call of an already-compiled fn, after one warm-up call."""
  jax.block_until_ready(fn(*args))
  t0 = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / repeats


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("config", nargs="?", default="configs/diffusion/ddpm_fashion_mnist.py:full")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  parser.add_argument("--batch", type=int, default=0, help="train batch size (default: the config's)")
  parser.add_argument("--train-steps", type=int, default=20)
  parser.add_argument("--sample-n", type=int, default=256)
  parser.add_argument("--sample-steps", type=int, default=50)
  parser.add_argument("--sample-repeats", type=int, default=2)
  parser.add_argument("--guidance", type=float, default=0.0, help="> 0: class-guided sampling")
  parser.add_argument("--peak-tflops", type=float, default=0.0)
  args = parser.parse_args()

  config = config_lib.load(args.config, args.set)
  family = registry.build(config)
  device = jax.devices()[0]
  shape = tuple(sources.info(config.data.name)["shape"])
  batch_size = args.batch or config.data.batch_size
  rng = np.random.default_rng(0)
  batch = {"x": jnp.asarray(rng.random((batch_size, *shape), dtype=np.float32)),
           "label": jnp.asarray(rng.integers(0, max(family.num_classes, 1), batch_size), jnp.int32)}
  state = jax.jit(family.init)(jax.random.key(0), batch)
  result = {"config": args.config, "overrides": args.set, "device": device.device_kind,
            "backend": jax.default_backend(), "dtype": family.config.model.dtype,
            "params": int(family.num_params(state)), "batch": batch_size}

  t0 = time.perf_counter()
  # The loop's compiler options for its train step (on XLA:CPU: Eigen convolutions, not YNNPACK's).
  options = compile_options.step_options(jax.default_backend())
  step = jax.jit(family.train_step, donate_argnums=0, compiler_options=options)
  step = step.lower(state, batch, jax.random.key(1)).compile()
  result["train_compile_s"] = time.perf_counter() - t0
  flops = flops_of(step)
  state, metrics = step(state, batch, jax.random.key(1))  # warm-up
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for i in range(args.train_steps):
    state, metrics = step(state, batch, jax.random.key(2 + i))
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - t0) / args.train_steps
  result.update(train_steps_per_s=1.0 / step_s, train_examples_per_s=batch_size / step_s,
                train_step_gflop=flops / 1e9, train_tflops_per_s=flops / step_s / 1e12)
  peak = peak_tflops(device, args.peak_tflops) if jax.default_backend() == "gpu" else None
  if peak:
    result.update(bf16_peak_tflops=peak, mfu=flops / step_s / 1e12 / peak)

  n = args.sample_n
  label = jnp.arange(n, dtype=jnp.int32) % family.num_classes if args.guidance > 0 and family.num_classes else None
  ddim = family.with_overrides("model.sampler=ddim", f"model.sample_steps={args.sample_steps}")
  cond = None if label is None else {"label": label, "guidance": jnp.float32(args.guidance)}
  sample = jax.jit(lambda s, key: ddim.sample(s, key, n, cond), compiler_options=options)  # as jgen's Sampler
  t0 = time.perf_counter()
  sample_compiled = sample.lower(state, jax.random.key(3)).compile()
  result["sample_compile_s"] = time.perf_counter() - t0
  sample_s = timed(sample_compiled, state, jax.random.key(4), repeats=args.sample_repeats)
  result.update(sample_n=n, sample_steps=args.sample_steps, guided=label is not None,
                ddim_images_per_s=n / sample_s)
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  main()
