"""2 processes (jax.distributed on localhost, gloo between CPU processes) against 1 process with as many devices.

  .venv/bin/python experiments/reliability/processes.py --root /tmp/jgen_processes [--steps 20]

Both train the same smoke config with a log line every step; the global batch is the same whatever the number
of processes (each process reads its contiguous slice of it), so every step's losses must agree to float
tolerance. The 2-process run also checkpoints, evaluates and, run again for more steps, resumes.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = "configs/vae/conv_digits.py:smoke"


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _train_args(workdir, steps):
  return [sys.executable, "-m", "jgen", "train", CONFIG, "--workdir", workdir, "--quiet",
          "--set", f"train.steps={steps}", "--set", "train.log_every=1", "--set", "train.ckpt_every=5",
          "--set", f"train.eval_every={steps}"]


def _env(devices, **extra):
  return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
          "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO, **extra}


def train_processes(workdir, steps, processes, timeout=600):
  """Trains with `processes` processes of 1 CPU device each (or, for 1, one process with 2 devices)."""
  if processes == 1:
    proc = subprocess.run(_train_args(workdir, steps), env=_env(2), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode:
      raise RuntimeError(f"1-process run failed: {proc.stderr[-1500:]}")
    return
  address = f"127.0.0.1:{_free_port()}"
  procs = [subprocess.Popen(_train_args(workdir, steps) + ["--distributed"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(1, JAX_COORDINATOR_ADDRESS=address,
                                                JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(i)))
           for i in range(processes)]
  try:
    outs = [p.communicate(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for i, (p, (_, err)) in enumerate(zip(procs, outs)):
    if p.returncode:
      raise RuntimeError(f"process {i} of {processes} failed (exit {p.returncode}): {err[-1500:]}")


def losses(workdir) -> dict[int, dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return {(r["step"], k): v for r in rows for k, v in r.items() if k not in ("step", "train/steps_per_s")}


def run(workdir_root: str, steps: int = 20, rtol: float = 1e-5) -> dict:
  shutil.rmtree(workdir_root, ignore_errors=True)
  os.makedirs(workdir_root)
  one, two = os.path.join(workdir_root, "one"), os.path.join(workdir_root, "two")
  train_processes(one, steps, 1)
  train_processes(two, steps // 2, 2)  # stopped half-way: the second call resumes from its checkpoint
  train_processes(two, steps, 2)
  a, b = losses(one), losses(two)
  # The stopped half-run also evaluated at its last step (10): compare what the uninterrupted run logged.
  if not set(a) <= set(b):
    return {"equal": False, "max_abs_diff": float("inf"), "steps": steps, "problem": "different metrics logged"}
  diff = max(abs(a[k] - b[k]) for k in a)
  equal = all(abs(a[k] - b[k]) <= rtol * max(abs(a[k]), 1.0) for k in a)
  return {"equal": equal, "max_abs_diff": diff, "steps": steps, "values_compared": len(a)}


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--root", default="/tmp/jgen_processes")
  parser.add_argument("--steps", type=int, default=20)
  args = parser.parse_args()
  print(json.dumps(run(args.root, args.steps)))
