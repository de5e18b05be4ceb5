"""Compile time and train steps/s of a config's jitted train step, on this machine's devices.

  python benchmarks/train_speed.py configs/vae/conv_fashion_mnist.py:full configs/gan/dcgan_fashion_mnist.py:full

Uses the config's model and batch size on random data of the dataset's shape and
dtype (so the data pipeline is not timed), the same sharded step the loop runs
(with `--set train.steps_per_call=s`, its scanned call of s steps).
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import json
import resource
import time

import jax
import numpy as np

from jgen import config as config_lib
from jgen import host_allocator
from jgen.train import loop, sharding


def bench(spec: str, steps: int, overrides=()) -> dict:
  config = config_lib.load(spec, overrides)
  runner = loop.Runner(config)
  data = runner.spec
  rng = np.random.default_rng(0)
  n = runner.batch_size * runner.k
  if data.dtype == "uint8":
    x = rng.integers(0, 256, (n, *data.shape)).astype(np.uint8)
  else:
    x = rng.random((n, *data.shape), dtype=np.float32)
  batch = {"x": x, "label": rng.integers(0, max(data.num_classes, 1), n).astype(np.int32)}
  runner.setup({k: v[:runner.batch_size] for k, v in batch.items()})
  state = runner.init(runner.init_key, sharding.put_batch({k: v[:runner.batch_size] for k, v in batch.items()},
                                                          runner.batch_sharding))
  # train.steps_per_call = s > 1 times the scanned call of s steps the loop runs between events.
  per_call = runner.steps_per_call
  placed = runner.put_call_batches([batch] * per_call) if per_call > 1 else runner.put_train_batch(batch)
  step_fn = runner.multi_step if per_call > 1 else runner.step
  steps = max(1, steps // per_call)
  flag = jax.numpy.int32(0)
  t0 = time.perf_counter()
  compiled = step_fn.lower(state, placed, flag).compile()
  compile_s = time.perf_counter() - t0
  state, metrics, flag = compiled(state, placed, flag)
  jax.block_until_ready(metrics)
  faults, cpu, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time(), time.perf_counter()
  for i in range(steps):
    state, metrics, flag = compiled(state, placed, flag)
  jax.block_until_ready(metrics)
  elapsed = time.perf_counter() - t0
  cpu, faults = time.process_time() - cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
  steps *= per_call
  return {"config": spec, "batch": runner.batch_size, "compile_s": compile_s, "steps_per_s": steps / elapsed,
          "examples_per_s": steps * runner.batch_size / elapsed, "cpu_ms_per_step": cpu / steps * 1e3,
          "page_faults_per_step": faults / steps}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override applied to every config, as in `jgen train --set`")
  parser.add_argument("--json", metavar="PATH", help="also write the results here")
  args = parser.parse_args()
  allocator = host_allocator.current()
  print(f"devices: {len(jax.devices())}x {jax.devices()[0].device_kind}; host malloc: {allocator}")
  print(f"{'config':55s} {'batch':>5s} {'compile s':>9s} {'steps/s':>8s} {'examples/s':>10s} {'CPU ms/step':>11s} "
        f"{'page faults/step':>16s}")
  results = []
  for spec in args.configs:
    r = bench(spec, args.steps, args.set)
    results.append({**r, "allocator": allocator})
    print(f"{r['config']:55s} {r['batch']:5d} {r['compile_s']:9.2f} {r['steps_per_s']:8.2f} {r['examples_per_s']:10.0f} "
          f"{r['cpu_ms_per_step']:11.1f} {r['page_faults_per_step']:16.0f}", flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
