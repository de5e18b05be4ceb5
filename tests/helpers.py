"""Shared test utilities: run the CLI in a subprocess, read a run's logged metrics, compare two functions' vjps."""

import json
import os
import subprocess
import sys

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_path(rel: str) -> str:
  return os.path.join(REPO, rel)


def run_cli(*args, env=None, timeout=600, clear_env=False) -> subprocess.CompletedProcess:
  """Runs `python -m jgen ARGS` in a fresh process (1 CPU device, like a user's shell); `clear_env` runs it with
  `env` alone instead of on top of this process's environment."""
  full_env = {**({} if clear_env else os.environ), "XLA_FLAGS": "", **(env or {})}
  return subprocess.run([sys.executable, "-m", "jgen", *args], capture_output=True, text=True, env=full_env,
                        timeout=timeout, cwd=REPO)


def logged(workdir: str, key: str) -> list[tuple[int, float]]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [(r["step"], r[key]) for r in rows if key in r]


def read_all(source):
  """Every example of a random-access source, stacked, in order: (x, labels)."""
  import numpy as np

  from jgen.data import pipeline

  examples = pipeline._read(source, range(len(source)))
  return np.stack([e["x"] for e in examples]), np.array([e["label"] for e in examples])


def vjp_both(f, g, x, kernel, cotangent):
  """Values and (x, kernel) gradients of f and g against one cotangent."""
  out = []
  for h in (f, g):
    y, vjp = jax.vjp(h, x, kernel)
    out.append((y, *vjp(cotangent)))
  return out
