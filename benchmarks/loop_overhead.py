"""What the training loop costs on top of its bare jitted step: steps/s of `jgen train` (input pipeline,
placing batches, logging) against the same step on batches already in memory, interleaved in one process.

  python benchmarks/loop_overhead.py configs/gan/dcgan_fashion_mnist.py:full configs/vae/conv_fashion_mnist.py:full

"bare" is benchmarks/train_speed.py's measurement; "loop" is the mean `train/steps_per_s` the loop logs over
its log intervals after the first (which holds compilation), in a run with no evaluation and one checkpoint
at the end. Both honour `--set` overrides (e.g. `train.steps_per_call=8`).
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

from jgen import config as config_lib  # noqa: E402
from jgen.train import loop  # noqa: E402
from train_speed import bench  # noqa: E402


def loop_speed(spec: str, steps: int, log_every: int, overrides=()) -> float:
  sets = [*overrides, f"train.steps={steps}", f"train.log_every={log_every}", "train.eval_every=0",
          "train.ckpt_every=0", "train.sample_num=0", "train.evals=''"]
  config = config_lib.load(spec, sets)
  with tempfile.TemporaryDirectory() as workdir:
    loop.train(config, os.path.join(workdir, "run"), show_progress=False)
    with open(os.path.join(workdir, "run", "metrics.jsonl")) as f:
      rates = [row["train/steps_per_s"] for row in map(json.loads, f) if "train/steps_per_s" in row]
  return statistics.mean(rates[1:-1])  # the first holds compilation, the last the final checkpoint


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--steps", type=int, default=600, help="loop steps per round")
  parser.add_argument("--log-every", type=int, default=100)
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = parser.parse_args()
  print(f"devices: {len(jax.devices())}x {jax.devices()[0].device_kind}; overrides: {args.set or 'none'}")
  print("| config | bare steps/s | loop steps/s | loop / bare |")
  print("| --- | --- | --- | --- |")
  for spec in args.configs:
    bare, looped = [], []
    for _ in range(args.rounds):  # interleaved, so drift in the machine's load hits both
      bare.append(bench(spec, args.steps // 2, args.set)["steps_per_s"])
      looped.append(loop_speed(spec, args.steps, args.log_every, args.set))
    b, lp = statistics.median(bare), statistics.median(looped)
    print(f"| {spec} | {b:.2f} ({min(bare):.2f}-{max(bare):.2f}) | {lp:.2f} ({min(looped):.2f}-{max(looped):.2f}) "
          f"| {lp / b:.3f} |", flush=True)


if __name__ == "__main__":
  main()
