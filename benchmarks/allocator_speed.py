"""Train steps/s of configs on glibc's malloc and under tcmalloc (jgen/host_allocator.py), alternating.

  python benchmarks/allocator_speed.py --rounds 2 --steps 20 configs/autoregressive/pixelcnn_fashion_mnist.py:cpu

Each (config, allocator) block is a fresh `benchmarks/train_speed.py` process (an allocator is chosen when a
process starts): `JGEN_ALLOCATOR=system` for glibc, as `jgen` runs without tcmalloc, and the default (tcmalloc
where installed). Blocks alternate glibc / tcmalloc config by config, --rounds times. Printed per config: the
median steps/s, CPU ms a step and minor page faults a step of each, and tcmalloc's steps/s over glibc's.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
SIDES = {"glibc": {"JGEN_ALLOCATOR": "system"}, "tcmalloc": {}}


def run_block(spec, steps, env_extra):
  env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "JGEN_ALLOCATOR")}
  with tempfile.TemporaryDirectory() as tmp:
    out = pathlib.Path(tmp) / "r.json"
    subprocess.run([sys.executable, str(HERE / "train_speed.py"), spec, "--steps", str(steps), "--json", str(out)],
                   env={**env, **env_extra}, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())[0]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--steps", type=int, default=20)
  args = parser.parse_args()
  runs = {spec: {side: [] for side in SIDES} for spec in args.configs}
  for round_ in range(args.rounds):
    for spec in args.configs:
      for side in (SIDES if round_ % 2 == 0 else reversed(list(SIDES))):
        r = run_block(spec, args.steps, SIDES[side])
        runs[spec][side].append(r)
        print(f"  round {round_ + 1} {spec} {side} ({r['allocator']}): {r['steps_per_s']:.2f} steps/s", flush=True)
  print(f"\n{os.cpu_count()} CPUs; {args.rounds} rounds of {args.steps} steps; {time.strftime('%Y-%m-%d %H:%M')}\n")
  print("| config | glibc steps/s | CPU ms / page faults a step | tcmalloc steps/s | CPU ms / page faults a step | "
        "tcmalloc / glibc |")
  print("| --- | --- | --- | --- | --- | --- |")
  for spec, sides in runs.items():
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("steps_per_s", "cpu_ms_per_step",
                                                                 "page_faults_per_step")} for side, rs in sides.items()}
    cells = [f"{m['steps_per_s']:.2f} | {m['cpu_ms_per_step']:.0f} / {m['page_faults_per_step']:,.0f}"
             for m in med.values()]
    print(f"| {spec} | {cells[0]} | {cells[1]} | {med['tcmalloc']['steps_per_s'] / med['glibc']['steps_per_s']:.2f} |")


if __name__ == "__main__":
  main()
