"""Compile time and train steps/s of a config's jitted train step, on this machine's devices.

  python benchmarks/train_speed.py configs/vae/conv_fashion_mnist.py:full configs/gan/dcgan_fashion_mnist.py:full

Uses the config's model and batch size on random data of the dataset's shape
(so the data pipeline is not timed), the same sharded step the loop runs.
"""

import argparse
import time

import jax
import numpy as np

from jgen import config as config_lib
from jgen.data import sources
from jgen.train import loop


def bench(spec: str, steps: int, overrides=()) -> dict:
  config = config_lib.load(spec, overrides)
  runner = loop.Runner(config)
  info = sources.info(config.data.name)
  shape = (runner.batch_size, *info["shape"])
  rng = np.random.default_rng(0)
  batch = {"x": rng.random(shape, dtype=np.float32), "label": rng.integers(0, 10, runner.batch_size).astype(np.int32)}
  placed = runner.setup(batch)
  state = runner.init(runner.init_key, placed)
  t0 = time.perf_counter()
  compiled = runner.step.lower(state, placed, runner.train_key).compile()
  compile_s = time.perf_counter() - t0
  state, metrics = compiled(state, placed, runner.train_key)
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for i in range(steps):
    state, metrics = compiled(state, placed, jax.random.fold_in(runner.train_key, i))
  jax.block_until_ready(metrics)
  elapsed = time.perf_counter() - t0
  return {"config": spec, "batch": runner.batch_size, "compile_s": compile_s, "steps_per_s": steps / elapsed,
          "examples_per_s": steps * runner.batch_size / elapsed}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override applied to every config, as in `jgen train --set`")
  args = parser.parse_args()
  print(f"devices: {len(jax.devices())}x {jax.devices()[0].device_kind}")
  print(f"{'config':55s} {'batch':>5s} {'compile s':>9s} {'steps/s':>8s} {'examples/s':>10s}")
  for spec in args.configs:
    r = bench(spec, args.steps, args.set)
    print(f"{r['config']:55s} {r['batch']:5d} {r['compile_s']:9.2f} {r['steps_per_s']:8.2f} {r['examples_per_s']:10.0f}")


if __name__ == "__main__":
  main()
