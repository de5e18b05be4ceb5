"""Where a config's train step spends its time, op by op: XLA's compiled ops, summed over a few profiled steps.

  python benchmarks/step_profile.py configs/autoregressive/pixelcnn_fashion_mnist.py:cpu
  python benchmarks/step_profile.py configs/seq/transformer_fortunes.py:cpu --steps 5 --top 30

Runs the loop's jitted train step (random data of the dataset's shape and dtype, as benchmarks/vs_pytorch.py)
under `jax.profiler.trace`, then reads the trace's per-op events. Each row is one kind of compiled op (the
fusion's kind, the numbered copies of it summed) with the jax operation it came from, from the compiled HLO's
metadata: `transpose(jvp(...))` is the backward pass, `jvp(...)` the forward. A fusion that XLA built around
an operation's result names that operation: a `transpose_copy_fusion` from `jvp()/add` is a layout copy of the
forward sum, made for a later op (on XLA:CPU, usually a convolution's weight gradient). Ops with no jax
operation behind them are "(inserted by XLA)". Times are milliseconds per step. The column need not sum to
the step: on XLA:CPU ops may overlap on the thread pool, and the trace does not see every op (convolutions
run by Eigen mostly do not appear).
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import collections
import gzip
import json
import pathlib
import re
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

from jgen import config as config_lib  # noqa: E402
from jgen.errors import UserError  # noqa: E402
from jgen.train import loop, sharding  # noqa: E402
from vs_pytorch import random_batch  # noqa: E402

_METADATA = r'metadata=\{op_name="([^"]+)"'
_OP_NAME = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = .*?" + _METADATA, re.M)
_COMPUTATION = re.compile(r"^(?:ENTRY )?%([\w.\-]+) \(")
_CALLS = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = .*?calls=%([\w.\-]+)", re.M)
_HOST_EVENTS = ("$", "Thunk", "PjRt", "Execute", "CommonPjRt", "Parse", "Handle", "Allocate", "end: ")


def compiled_step(spec: str, overrides):
  """The loop's compiled train step, its arguments after two warm-up steps, and its HLO text."""
  runner = loop.Runner(config_lib.load(spec, overrides))
  batch = random_batch(runner.spec.to_json(), runner.batch_size * runner.k)
  one = {k: v[:runner.batch_size] for k, v in batch.items()}
  runner.setup(one)
  placed = runner.put_train_batch(batch)
  state = runner.init(runner.init_key, sharding.put_batch(one, runner.batch_sharding))
  flag = jax.numpy.int32(0)
  step = runner.step.lower(state, placed, flag).compile()
  for _ in range(2):
    state, _, flag = step(state, placed, flag)
  jax.block_until_ready(state)
  return step, (state, placed, flag), step.as_text()


def op_origins(hlo: str) -> dict:
  """Compiled op name -> the jax operation it came from: the first op_name in its metadata, else in the metadata
  of the computation it calls (a fusion). A fusion with none anywhere is a copy XLA inserted itself, such as the
  transposes that give a convolution's gradient the operand layouts it needs."""
  clean = lambda op: re.sub(r"jit\([\w<>]+\)/", "", op)
  origins = {name: clean(op) for name, op in reversed(_OP_NAME.findall(hlo))}  # the first one wins
  computation_origin, current = {}, None
  for line in hlo.splitlines():
    header = _COMPUTATION.match(line)
    if header:
      current = header.group(1)
    elif current and current not in computation_origin:
      op = re.search(_METADATA, line)
      if op:
        computation_origin[current] = clean(op.group(1))
  for name, callee in _CALLS.findall(hlo):
    if name not in origins:
      origins[name] = computation_origin.get(callee, "(inserted by XLA)")
  return origins


def profile(spec: str, steps: int, overrides=()) -> dict:
  step, (state, batch, flag), hlo = compiled_step(spec, overrides)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, _, flag = step(state, batch, flag)
  jax.block_until_ready(state)
  step_ms = (time.perf_counter() - t0) / steps * 1e3
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for _ in range(steps):
        state, _, flag = step(state, batch, flag)
      jax.block_until_ready(state)
    trace_file = next(pathlib.Path(trace_dir).rglob("*.trace.json.gz"))
    with gzip.open(trace_file) as f:
      events = json.load(f)["traceEvents"]
  origins = op_origins(hlo)
  rows = collections.Counter()
  for event in events:
    name = event.get("name", "")
    if event.get("ph") != "X" or name.startswith(_HOST_EVENTS) or name not in origins:
      continue
    kind = re.sub(r"\.\d+$", "", name)
    rows[(kind, origins[name])] += event.get("dur", 0) / 1e3 / steps
  return {"step_ms": step_ms, "rows": rows}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("config", help="CONFIG.py[:variant]")
  parser.add_argument("--steps", type=int, default=3, help="profiled steps (after two warm-up steps)")
  parser.add_argument("--top", type=int, default=25, help="rows to print")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
  args = parser.parse_args()
  if args.steps < 1 or args.top < 1:
    parser.error("--steps and --top must be at least 1")
  try:
    result = profile(args.config, args.steps, args.set)
  except UserError as e:  # a bad config or override: one line, as the jgen command gives it
    print(f"step_profile.py: {e}", file=sys.stderr)
    sys.exit(2)
  rows = result["rows"]
  print(f"{args.config}: {result['step_ms']:.1f} ms a step unprofiled; {sum(rows.values()):.1f} ms of compiled "
        f"ops a step profiled; {jax.devices()[0].device_kind}, {time.strftime('%Y-%m-%d %H:%M')}\n")
  print("| ms / step | compiled op | from |\n| --- | --- | --- |")
  for (kind, origin), ms in rows.most_common(args.top):
    print(f"| {ms:.1f} | {kind} | {origin} |")


if __name__ == "__main__":
  main()
