"""Seconds from a config to its first train step: build, trace, lower, compile and run, stage by stage.

  python benchmarks/compile_time.py configs/diffusion/ddpm_fashion_mnist.py:full \
      configs/diffusion/ddpm_fashion_mnist.py:cpu [--set KEY=VALUE] [--eval] [--scan] [--log-compiles]

For each config, in a fresh process each (so no jit cache is shared between them), on random data of the
dataset's shape: `build` is `loop.Runner(config)` plus `Runner.setup` (the family, its graphdefs and the
abstract state); then, for the jitted init, the sharded train step and (with `--eval`) the eval step, as the
loop builds them: `trace` (Python tracing to a jaxpr), `lower` (jaxpr to StableHLO), `compile` (XLA) and
`run` (the first call, blocked on). "to first step" is the sum of build, init and step, what `jgen train`
waits before its first step; the eval step is compiled lazily at the first evaluation and is not part of it,
nor is (`--scan`) the pass over the state that precedes every checkpoint (`jgen.train.checksum.scan`: the
arrays' checksums and whether every float is finite), compiled at the first one.
Each stage is given in wall seconds and, in parentheses, the process's CPU seconds (all threads): tracing and
compiling are CPU-bound, so on a shared machine their CPU seconds are the steadier number (a run's are not:
idle worker threads spin). `--log-compiles` prints every compilation jax makes (jax_log_compiles).
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import jax
import numpy as np

STAGES = ("trace", "lower", "compile", "run")


class _Clock:
  """Wall and process CPU seconds (all threads) since the last lap: on a shared machine the CPU seconds of
  tracing and compiling (single-threaded) say more than the wall clock."""

  def __init__(self):
    self.wall, self.cpu = time.perf_counter(), time.process_time()

  def lap(self) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = (wall - self.wall, cpu - self.cpu)
    self.wall, self.cpu = wall, cpu
    return out


def _staged(fn, *args, options=None) -> tuple[dict, object, object]:
  """Times each stage of a jitted function's first call; returns the (wall, cpu) timings, the outputs and the
  compiled function (calling `fn` again would compile again: jit's cache does not see `lower().compile()`)."""
  times, clock = {}, _Clock()
  traced = fn.trace(*args)
  times["trace"] = clock.lap()
  lowered = traced.lower()
  times["lower"] = clock.lap()
  compiled = lowered.compile(options)
  times["compile"] = clock.lap()
  out = jax.block_until_ready(compiled(*args))
  times["run"] = clock.lap()
  times["total"] = tuple(sum(times[s][i] for s in STAGES) for i in range(2))
  return times, out, compiled


def measure(spec: str, overrides=(), evaluate: bool = False, fast_init: bool = False, scan: bool = False) -> dict:
  from jgen import config as config_lib
  from jgen.train import checksum, loop, sharding

  clock = _Clock()
  config = config_lib.load(spec, overrides)
  runner = loop.Runner(config)
  data = runner.spec
  rng = np.random.default_rng(0)

  def batch_of(n):
    if data.dtype == "uint8":
      x = rng.integers(0, 256, (n, *data.shape)).astype(np.uint8)
    else:
      x = rng.random((n, *data.shape), dtype=np.float32)
    return {"x": x, "label": rng.integers(0, max(data.num_classes, 1), n).astype(np.int32)}

  batch = batch_of(runner.batch_size * runner.k)
  first = {k: v[:runner.batch_size] for k, v in batch.items()}
  runner.setup(first)
  result = {"config": spec, "build": clock.lap()}

  init_key, init_options = runner.init_key, None
  if fast_init:  # one RngBitGenerator op instead of a threefry hash per parameter; LLVM -O0 for code run once
    init_key = jax.random.key(config.train.seed, impl="rbg")
    init_options = {"xla_backend_optimization_level": 0}
  result["init"], state, _ = _staged(runner.init, init_key, sharding.put_batch(first, runner.batch_sharding),
                                  options=init_options)
  # As the loop runs it: the divergence flag on the mesh, s > 1 steps per call as one scanned call.
  flag = jax.device_put(jax.numpy.int32(0), runner.replicated)
  per_call = runner.steps_per_call
  placed = runner.put_call_batches([batch] * per_call) if per_call > 1 else runner.put_train_batch(batch)
  result["step"], (state, _, flag), step = _staged(runner.multi_step if per_call > 1 else runner.step, state,
                                                    placed, flag)
  result["to_first_step"] = tuple(result["build"][i] + result["init"]["total"][i] + result["step"]["total"][i]
                                  for i in range(2))
  clock.lap()
  state, _, flag = jax.block_until_ready(step(state, placed, flag))
  result["next_step"] = clock.lap()  # the compiled step alone: what "run" costs beyond the compute
  if evaluate:
    eval_batch = sharding.put_batch(batch_of(runner.eval_batch_size), runner.batch_sharding)
    mask = sharding.put_batch({"m": np.ones(runner.eval_batch_size, bool)}, runner.batch_sharding)["m"]
    result["eval"], _, _ = _staged(runner.eval, state, eval_batch, mask, jax.numpy.int32(0))
  if scan:
    result["scan"], _, _ = _staged(checksum._scan_all, jax.tree.leaves(state))
  result["params"] = int(runner.family.num_params(state))
  result["devices"] = f"{len(jax.devices())}x {jax.devices()[0].device_kind}"
  return result


def measure_loop(spec: str, overrides=(), resume: bool = False, cache: str | None = None) -> dict:
  """Seconds from loading the config to the end of the first step of `jgen.train.loop.train` itself (no in-loop
  evaluators), on the dataset's prepared records; the run stops there. In a fresh workdir, or with `resume`
  in one that a first run (`jgen train`, another process, one step and its checkpoint, untimed) left; that
  run keeps its programs in `cache` (none without), as the timed run does."""
  import tempfile

  from jgen import config as config_lib
  from jgen.train import loop

  # The first run's closing eval is cut to one small batch; the timed run has the same config, as a resume must.
  sets = tuple(overrides) + ("train.eval_every=0", "train.ckpt_every=1", "train.sample_num=0", "train.evals=",
                             "train.eval_batches=1", "data.eval_batch_size=8")
  workdir_root = tempfile.mkdtemp()
  workdir = os.path.join(workdir_root, "run")
  if resume:
    cmd = [sys.executable, "-m", "jgen", "train", spec, "--workdir", workdir, "--quiet", "--set", "train.steps=1"]
    subprocess.run(cmd + [a for s in sets for a in ("--set", s)], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "JAX_COMPILATION_CACHE_DIR": cache or ""})
  clock = _Clock()
  config = config_lib.load(spec, sets + ("train.steps=3",))
  first = {}
  run = loop.Runner.run

  class FirstStepDone(Exception):
    pass

  def timed_run(self, state, placed, first_bad):
    jax.block_until_ready(run(self, state, placed, first_bad))
    first["to_first_step"] = clock.lap()
    raise FirstStepDone  # the rest of the run (its final eval and checkpoint) is not timed

  loop.Runner.run = timed_run
  try:
    loop.train(config, workdir, show_progress=False)
  except FirstStepDone:
    pass
  finally:
    shutil.rmtree(workdir_root, ignore_errors=True)
  return {"config": spec, "loop": "resumed" if resume else "fresh", **first,
          "devices": f"{len(jax.devices())}x {jax.devices()[0].device_kind}"}


def _fmt(t):
  return f"{t[0]:7.2f} ({t[1]:6.2f})"


def report(r) -> str:
  if r.get("loop"):
    return (f"{r['config']}  ({r['devices']}): jgen.train.loop.train ({r['loop']} workdir) to the end of its "
            f"first step: {_fmt(r['to_first_step'])}")
  lines = [f"{r['config']}  ({r['devices']}, {r['params']:,} parameters); seconds wall (cpu)",
           f"  {'':6s}" + "".join(f" {s:>16s}" for s in (*STAGES, "total")),
           f"  {'build':6s} {'':67s} {_fmt(r['build'])}"]
  for name in ("init", "step", "eval", "scan"):
    if name in r:
      lines.append(f"  {name:6s}" + "".join(f" {_fmt(r[name][s])}" for s in (*STAGES, "total")))
  lines.append(f"  to first step (build + init + step): {_fmt(r['to_first_step'])}; the next step: "
               f"{_fmt(r['next_step'])}")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("configs", nargs="+")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override applied to every config, as in `jgen train --set`")
  parser.add_argument("--eval", action="store_true", help="also trace, compile and run the eval step once")
  parser.add_argument("--scan", action="store_true", help="also trace, compile and run the state's scan before a "
                      "checkpoint (checksums and the finite check) once")
  parser.add_argument("--log-compiles", action="store_true", help="print every compilation (jax_log_compiles)")
  parser.add_argument("--cache", metavar="DIR", help="jax's persistent compilation cache in DIR, as `jgen train` "
                      "keeps it (jgen/train/compile_cache.py; run twice: the second run reads what the first wrote)")
  parser.add_argument("--fast-init", action="store_true", help="the init as the loop could build it: an rbg key "
                      "and XLA's backend optimisation level 0 (it runs once)")
  parser.add_argument("--loop", action="store_true", help="time the training loop itself (`jgen train`, "
                      "1 step, real data: run `make data` first) to the end of its first step, not stage by stage")
  parser.add_argument("--resume", action="store_true", help="with --loop: time a resumed run (a first run, "
                      "untimed, trains one step and checkpoints it)")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one config, in a fresh process
  args = parser.parse_args()
  if args.log_compiles:
    jax.config.update("jax_log_compiles", True)
  if args.cache:
    from jgen.train import compile_cache

    compile_cache.use_persistent_cache(args.cache)
  if args.child:
    result = (measure_loop(args.configs[0], args.set, args.resume, args.cache) if args.loop
              else measure(args.configs[0], args.set, args.eval, args.fast_init, args.scan))
    print("RESULT " + json.dumps(result))
    return
  for spec in args.configs:
    cmd = [sys.executable, __file__, spec, "--child"] + [f"--set={s}" for s in args.set]
    cmd += ["--eval"] * args.eval + ["--log-compiles"] * args.log_compiles + ["--fast-init"] * args.fast_init
    cmd += ["--loop"] * args.loop + ["--resume"] * args.resume + ["--scan"] * args.scan
    cmd += [f"--cache={args.cache}"] if args.cache else []
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(report(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])), flush=True)


if __name__ == "__main__":
  main()
