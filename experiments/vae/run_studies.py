"""Trains and scores the VAE study's runs within a wall-clock budget: `jgen train`, then `jgen evaluate` once
on the test split from the checkpoint that was best on validation.

  python experiments/vae/run_studies.py --root runs/vae_study --budget 540 --jobs resvae,vae,ae
  python experiments/vae/run_studies.py --root /tmp/vs --variant smoke --jobs all     # a seconds-long check

Each job first trains `--probe` steps to measure its own step rate, then resumes with as many steps of its
config as fit its share of the budget (never more than the config's `train.steps`; rounded down to whole eval
intervals), so a run stopped short says so: `summary.json` records the steps run, the config's steps and the
seconds of every phase. `--pack DIR` writes one tar.gz per run (its best checkpoint only, metrics, samples,
eval.json) for bringing runs back from an accelerator machine.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name -> (config, share of the budget, evaluate metrics)
JOBS = {
    "resvae": ("configs/vae/resnet_fashion_mnist.py", 5.0, "nll,iwae,fid,pr"),
    "vae": ("configs/vae/conv_fashion_mnist.py", 1.0, "nll,iwae,fid,pr"),
    "iwae": ("configs/vae/iwae_fashion_mnist.py", 1.5, "nll,iwae,fid,pr"),
    "beta_vae": ("configs/vae/beta_vae_fashion_mnist.py", 1.0, "nll,iwae,fid,pr"),
    "cvae": ("configs/vae/cvae_fashion_mnist.py", 1.0, "nll,iwae,fid,pr"),
    "ae": ("configs/vae/ae_fashion_mnist.py", 0.8, "fid,pr"),
    "resvae_logistic": ("configs/vae/resnet_fashion_mnist.py:logistic", 3.0, "nll,fid,pr"),
}


def jgen(*args, timeout=None):
  """Runs `python -m jgen.cli ARGS`; (return code, seconds, last lines of its output)."""
  t0 = time.perf_counter()
  try:
    p = subprocess.run([sys.executable, "-m", "jgen.cli", *args], cwd=REPO, capture_output=True, text=True,
                       timeout=timeout)
    code, out = p.returncode, p.stdout + p.stderr
  except subprocess.TimeoutExpired as e:
    code, out = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else str(e.stdout)
  return code, time.perf_counter() - t0, "\n".join(str(out).strip().splitlines()[-3:])


def config_of(spec: str, variant: str) -> tuple[str, dict]:
  from jgen import config as config_lib

  path = spec if ":" in spec else f"{spec}:{variant}"
  c = config_lib.load(os.path.join(REPO, path))
  return path, {"steps": c.train.steps, "eval_every": c.train.eval_every or c.train.steps,
                "cosine": c.optim.decay == "cosine" if "optim" in c else False}


def run_job(name, spec, variant, root, seconds, metrics, iwae_samples, probe, log):
  path, c = config_of(spec, variant)
  workdir = os.path.join(root, name)
  record = {"config": path, "config_steps": c["steps"], "budget_s": round(seconds, 1)}
  t_start = time.perf_counter()
  first = min(probe, c["steps"])
  code, secs, tail = jgen("train", path, "--workdir", workdir, "--quiet", "--set", f"train.steps={first}",
                          timeout=max(seconds, 60))
  record["probe"] = {"steps": first, "seconds": round(secs, 1), "code": code}
  if code != 0:
    record["error"] = tail
    return record
  steps = first
  if c["steps"] > first:
    with open(os.path.join(workdir, "run.json")) as f:
      rate = first / max(json.load(f)["train_seconds"], 1e-3)
    left = seconds - (time.perf_counter() - t_start) - 0.25 * seconds  # the rest is for evaluation
    fit = int(rate * max(left, 0) / 1.1)
    steps = min(c["steps"], max(first, fit // c["eval_every"] * c["eval_every"]))
    record["rate_steps_per_s"] = round(rate, 1)
  if steps > first:
    extra = ["--set", f"train.steps={steps}"]
    if c["cosine"]:
      extra += ["--set", f"optim.decay_steps={steps}"]  # the schedule ends where the shortened run ends
    code, secs, tail = jgen("train", path, "--workdir", workdir, "--quiet", *extra, timeout=max(seconds, 60))
    record["train"] = {"steps": steps, "seconds": round(secs, 1), "code": code}
    if code != 0:
      record["error"] = tail
  record["steps"] = steps
  k = ["--iwae-samples", str(iwae_samples)] if "iwae" in metrics.split(",") else []
  code, secs, tail = jgen("evaluate", "--workdir", workdir, "--checkpoint", "best", "--metrics", metrics, *k,
                          timeout=max(seconds, 120))
  record["evaluate"] = {"metrics": metrics, "seconds": round(secs, 1), "code": code}
  if code != 0:
    record["evaluate"]["error"] = tail
  log(f"{name}: {steps} of {c['steps']} steps, evaluate {code} in {secs:.0f} s; {tail.splitlines()[-1] if tail else ''}")
  return record


def pack(root: str, name: str, out_dir: str) -> str:
  """runs/<name> without its checkpoints other than the newest (the best one, once evaluate has run)."""
  workdir = os.path.join(root, name)
  ckpts = os.path.join(workdir, "checkpoints")
  steps = sorted((int(d) for d in os.listdir(ckpts) if d.isdigit()), reverse=True) if os.path.isdir(ckpts) else []
  best = steps[0] if steps else None
  try:
    from jgen.train import checkpoint as checkpoint_lib

    best = checkpoint_lib.manager(workdir, create=False, best_mode="min").best_step() or best
  except Exception:  # the newest is a good stand-in
    pass
  path = os.path.join(out_dir, f"{name}.tar.gz")
  with tarfile.open(path, "w:gz") as tar:
    for entry in sorted(os.listdir(workdir)):
      if entry == "checkpoints":
        continue
      tar.add(os.path.join(workdir, entry), arcname=os.path.join(name, entry))
    if best is not None:
      tar.add(os.path.join(ckpts, str(best)), arcname=os.path.join(name, "checkpoints", str(best)))
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True)
  parser.add_argument("--jobs", default="all", help=f"comma-separated, of {', '.join(JOBS)}; or all")
  parser.add_argument("--variant", default="full", help="the config variant of every job (smoke for a check)")
  parser.add_argument("--budget", type=float, default=540.0, help="seconds for all jobs together")
  parser.add_argument("--probe", type=int, default=2000, help="steps trained to measure the step rate")
  parser.add_argument("--iwae-samples", type=int, default=5000)
  parser.add_argument("--pack", help="write one tar.gz per run here")
  args = parser.parse_args()
  names = list(JOBS) if args.jobs == "all" else args.jobs.split(",")
  t0 = time.perf_counter()
  summary_path = os.path.join(args.pack or args.root, "summary.json")
  os.makedirs(os.path.dirname(summary_path), exist_ok=True)
  summary = {}

  def log(message):
    print(f"[{time.perf_counter() - t0:6.0f} s] {message}", flush=True)

  for i, name in enumerate(names):
    config, share, metrics = JOBS[name]
    left = args.budget - (time.perf_counter() - t0)
    shares = sum(JOBS[n][1] for n in names[i:])
    if left < 30:
      summary[name] = {"skipped": f"{left:.0f} s of the budget left"}
      continue
    summary[name] = run_job(name, config, args.variant, args.root, left * share / shares, metrics,
                            args.iwae_samples, args.probe, log)
    if args.pack and os.path.isdir(os.path.join(args.root, name)):
      summary[name]["pack"] = os.path.basename(pack(args.root, name, args.pack))
    with open(summary_path, "w") as f:
      json.dump(summary, f, indent=2)
  log(f"done; {summary_path}")


if __name__ == "__main__":
  main()
