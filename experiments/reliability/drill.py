"""The reliability drill: tries jgen's promises the way a hostile world would and prints the table.

  .venv/bin/python experiments/reliability/drill.py --root /tmp/jgen_drill [--kills 20] [--only kill,damage,...]

Parts (each a row of the table):
  kill        kill -9 at a uniformly random moment of a run, then the same command; the finished run must
              equal an uninterrupted one (every logged metric, and the checksums of the final checkpoint).
  damage      the newest checkpoint damaged in 12 ways: `jgen sample` falls back in one line, `jgen train`
              falls back in one line, sets it aside, retrains to an identical end, and the next run says nothing.
  nan         a NaN forced at a log step and between log steps: nothing non-finite on disk, no save left in
              flight, the named checkpoint exists, the same command with a lower lr resumes.
  concurrent  two `jgen train` started together on one workdir: one refuses in one line, the other finishes
              identical to an uninterrupted run; a killed holder's lock is taken over.
  processes   2 processes (jax.distributed on localhost) against 1 (experiments/reliability/processes.py).
  bad_inputs  every bad input is one line, exit 2, nothing changed (experiments/reliability/bad_inputs.py).
  disk        a full disk (a tmpfs filled up) and a checkpoint directory made read-only during training: one
              line, exit 2, the last good checkpoint restores (needs root: `unshare -m`, `mount`, `setpriv`).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
JGEN = [sys.executable, "-m", "jgen"]
ENV = {**os.environ, "XLA_FLAGS": "", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}

# Three families, each with several checkpoints and logs so that kills land in saves, logs and evals alike.
KILL_RUNS = {
    "VAE digits": ["configs/vae/conv_digits.py:smoke", "train.steps=40", "train.ckpt_every=5", "train.log_every=1",
                   "train.eval_every=20", "train.keep=3"],
    "DDPM toy": ["configs/diffusion/ddpm_toy2d.py:smoke", "train.steps=40", "train.ckpt_every=5",
                 "train.log_every=1", "train.eval_every=20", "train.keep=3"],
    "DCGAN smoke": ["configs/gan/dcgan_fashion_mnist.py:smoke", "train.steps=30", "train.ckpt_every=5",
                    "train.log_every=1", "train.eval_every=15", "train.keep=3"],
}
DAMAGE_RUN = ["configs/vae/conv_digits.py:smoke", "train.steps=20", "train.ckpt_every=5", "train.log_every=1",
              "train.eval_every=10", "train.keep=5"]


def train_cmd(spec, workdir):
  config, *sets = spec
  return JGEN + ["train", config, "--workdir", workdir, "--quiet"] + [a for s in sets for a in ("--set", s)]


def run(cmd, timeout=900):
  return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=timeout)


def fingerprint(workdir):
  """Every logged metric but speed, and the checksums of the newest checkpoint: what 'identical' compares."""
  rows = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      rows.append({k: v for k, v in row.items() if k != "train/steps_per_s"})
  ckpt = os.path.join(workdir, "checkpoints")
  last = max(int(d) for d in os.listdir(ckpt) if d.isdigit())
  with open(os.path.join(ckpt, str(last), "data", "metadata")) as f:
    return rows, last, json.load(f)["checksums"]


def stderr_lines(proc):
  return [line for line in proc.stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------- kill -9

def kill_trials(root, trials, seed=0):
  rng = random.Random(seed)
  out = {}
  for name, spec in KILL_RUNS.items():
    ref_dir = os.path.join(root, "kill", name.replace(" ", "_"), "reference")
    shutil.rmtree(ref_dir, ignore_errors=True)
    t0 = time.perf_counter()
    proc = run(train_cmd(spec, ref_dir))
    duration = time.perf_counter() - t0
    if proc.returncode:
      raise RuntimeError(f"{name}: reference run failed: {proc.stderr[-2000:]}")
    reference = fingerprint(ref_dir)
    identical, failures = 0, []
    for trial in range(trials):
      workdir = os.path.join(root, "kill", name.replace(" ", "_"), f"trial{trial}")
      shutil.rmtree(workdir, ignore_errors=True)
      delay = rng.uniform(0.0, duration)
      victim = subprocess.Popen(train_cmd(spec, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=ENV, cwd=REPO, start_new_session=True)
      time.sleep(delay)
      if victim.poll() is None:
        os.killpg(victim.pid, signal.SIGKILL)
      victim.wait()
      proc = run(train_cmd(spec, workdir))
      if proc.returncode:
        failures.append(f"{name} trial {trial} (kill at {delay:.1f}s): rerun exit {proc.returncode}: "
                        f"{stderr_lines(proc)[-1:] }")
      elif fingerprint(workdir) != reference:
        failures.append(f"{name} trial {trial} (kill at {delay:.1f}s): differs from the uninterrupted run")
      else:
        identical += 1
      shutil.rmtree(workdir, ignore_errors=True)
    out[name] = dict(trials=trials, identical=identical, failures=failures, run_seconds=round(duration, 1))
  return out


# ---------------------------------------------------------------------------------------------------- damage

def _largest(directory):
  files = [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs]
  return max(files, key=os.path.getsize)


def _flip(path, n=64):
  with open(path, "r+b") as f:
    data = bytearray(f.read())
    mid = len(data) // 2
    data[mid:mid + n] = bytes(b ^ 0xFF for b in data[mid:mid + n])
    f.seek(0)
    f.write(data)


def _write(path, text):
  with open(path, "w") as f:
    f.write(text)


def _edit_json(path, fn):
  with open(path) as f:
    data = json.load(f)
  _write(path, json.dumps(fn(data)))


DAMAGES = {
    "state/_METADATA emptied": lambda c: open(f"{c}/state/_METADATA", "w").close(),
    "state/_METADATA deleted": lambda c: os.remove(f"{c}/state/_METADATA"),
    "state/manifest.ocdbt garbled": lambda c: _write(f"{c}/state/manifest.ocdbt", "garbage"),
    "64 bytes flipped in the largest array file": lambda c: _flip(_largest(f"{c}/state/d")),
    "largest array file cut in half": lambda c: os.truncate(_largest(f"{c}/state/d"),
                                                            os.path.getsize(_largest(f"{c}/state/d")) // 2),
    "array files deleted": lambda c: shutil.rmtree(f"{c}/state/d"),
    "state replaced by an older step's": lambda c: (shutil.rmtree(f"{c}/state"),
                                                     shutil.copytree(f"{c}/../15/state", f"{c}/state")),
    "data item emptied": lambda c: open(f"{c}/data/metadata", "w").close(),
    "data item torn JSON": lambda c: _write(f"{c}/data/metadata", '{"iterator": {"next_'),
    "data item a JSON list": lambda c: _write(f"{c}/data/metadata", "[1, 2, 3]"),
    "iterator state of another kind": lambda c: _edit_json(f"{c}/data/metadata",
                                                           lambda d: {**d, "iterator": {"bogus": 1}}),
    "data item deleted": lambda c: shutil.rmtree(f"{c}/data"),
}


def damage_trials(root):
  base = os.path.join(root, "damage", "reference")
  shutil.rmtree(base, ignore_errors=True)
  proc = run(train_cmd(DAMAGE_RUN, base))
  if proc.returncode:
    raise RuntimeError(f"damage reference run failed: {proc.stderr[-2000:]}")
  reference = fingerprint(base)
  results = {}
  for i, (name, damage) in enumerate(DAMAGES.items()):
    workdir = os.path.join(root, "damage", f"mode{i}")
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(base, workdir)
    damage(os.path.join(workdir, "checkpoints", "20"))
    sample = run(JGEN + ["sample", "--workdir", workdir, "--out", os.path.join(workdir, "s.png")])
    train = run(train_cmd(DAMAGE_RUN, workdir))
    again = run(train_cmd(DAMAGE_RUN, workdir))
    s_lines, t_lines = stderr_lines(sample), stderr_lines(train)
    detected = any("step 20 is damaged" in line for line in s_lines + t_lines)
    # Sampling reads only the state: damage elsewhere (the iterator) rightly goes unmentioned there.
    one_line = (sample.returncode == 0 and len(s_lines) <= 1 and train.returncode == 0 and len(t_lines) == 1
                and "Traceback" not in sample.stderr + train.stderr)
    healed = (train.returncode == 0 and again.returncode == 0 and not stderr_lines(again)
              and fingerprint(workdir) == reference)
    results[name] = dict(detected=detected, one_line=one_line, healed=healed,
                         notes=(s_lines + t_lines)[:2] if not (detected and one_line and healed) else [])
    shutil.rmtree(workdir, ignore_errors=True)
  return results


# ---------------------------------------------------------------------------------------------------- NaN

NAN_SCRIPT = r"""
import json, os, sys
import jax, jax.numpy as jnp
from jgen import config as config_lib, registry
from jgen.families.vae import VAE
from jgen.train import checkpoint, loop

class NanAtFive(VAE):  # parameters NaN from step 5 on while the lr is above 0.01; metrics stay finite that step
  def train_step(self, state, batch, rng):
    new, metrics = super().train_step(state, batch, rng)
    poison = jnp.where((new.step >= 5) & (self.config.optim.lr > 0.01), jnp.nan, 0.0)
    return new.replace(params=jax.tree.map(lambda p: p + poison, new.params)), metrics

registry.register("drill.nan_at_five", family="VAE")(NanAtFive)
workdir, log_every = sys.argv[1], sys.argv[2]

def config(lr):
  c = config_lib.load("configs/vae/conv_digits.py:smoke", ["train.steps=12", "train.ckpt_every=2",
      f"train.log_every={log_every}", "train.eval_every=0", "train.keep=10", f"optim.lr={lr}"])
  with c.unlocked():
    c.model.name = "drill.nan_at_five"
  return c

out = {}
try:
  loop.train(config(0.1), workdir, show_progress=False)
  out["stopped"] = False
except loop.TrainingDiverged as e:
  out["stopped"], out["message"] = True, str(e)
mngr = checkpoint.manager(workdir)
runner = loop.Runner(config(0.1))
runner.setup(runner.family.spec.example_batch(32))
finite = []
for step in mngr.all_steps():
  state = checkpoint.restore_latest(mngr, lambda d: (runner.abstract_state, runner.state_sharding), [step])[1]
  finite.append(all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.params)))
out["steps_on_disk"] = sorted(mngr.all_steps())
out["all_finite"] = all(finite)
out["in_flight_left"] = [d for d in os.listdir(os.path.join(workdir, "checkpoints")) if "tmp" in d]
loop.train(config(0.001), workdir, show_progress=False)
out["resumed_to"] = int(checkpoint.restore_for_inference(workdir)[2].step)
print(json.dumps(out))
"""


def nan_trials(root):
  results = {}
  for log_every, where in ((1, "at a log step"), (4, "between log steps"), (0, "with logging off")):
    workdir = os.path.join(root, "nan", f"log{log_every}")
    shutil.rmtree(workdir, ignore_errors=True)
    proc = run([sys.executable, "-c", NAN_SCRIPT, workdir, str(log_every)])
    if proc.returncode:
      results[where] = dict(ok=False, notes=stderr_lines(proc)[-1:])
      continue
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ok = (out["stopped"] and out["all_finite"] and not out["in_flight_left"] and out["resumed_to"] == 12
          and "checkpoint (step 4) is kept" in out["message"] and 4 in out["steps_on_disk"]
          and max(out["steps_on_disk"]) <= 12)
    results[where] = dict(ok=ok, notes=[] if ok else [json.dumps(out)[:300]])
  return results


# ---------------------------------------------------------------------------------------------------- two runs

def concurrent_trials(root, trials=3):
  spec = KILL_RUNS["VAE digits"]
  reference = fingerprint(os.path.join(root, "kill", "VAE_digits", "reference")) if os.path.isdir(
      os.path.join(root, "kill", "VAE_digits", "reference")) else None
  if reference is None:
    ref_dir = os.path.join(root, "concurrent", "reference")
    shutil.rmtree(ref_dir, ignore_errors=True)
    run(train_cmd(spec, ref_dir))
    reference = fingerprint(ref_dir)
  good, notes = 0, []
  for trial in range(trials):
    workdir = os.path.join(root, "concurrent", f"trial{trial}")
    shutil.rmtree(workdir, ignore_errors=True)
    procs = [subprocess.Popen(train_cmd(spec, workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=ENV, cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    codes = sorted(p.returncode for p in procs)
    refusal = [e for (o, e), p in zip(outs, procs) if p.returncode == 2]
    ok = (codes == [0, 2] and len(refusal[0].strip().splitlines()) == 1 and "in use" in refusal[0]
          and fingerprint(workdir) == reference)
    # The holder killed: its lock goes with it, and the same command takes over and finishes identically.
    holder = subprocess.Popen(train_cmd(spec, workdir + "_stale"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=ENV, cwd=REPO, start_new_session=True)
    time.sleep(6)
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    again = run(train_cmd(spec, workdir + "_stale"))
    ok = ok and again.returncode == 0 and fingerprint(workdir + "_stale") == reference
    good += ok
    if not ok:
      notes.append(f"trial {trial}: exit codes {codes}, refusal {refusal[:1]}, takeover exit {again.returncode}")
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(workdir + "_stale", ignore_errors=True)
  return dict(trials=trials, good=good, notes=notes)


# ---------------------------------------------------------------------------------------------------- disk

DISK_SCRIPT = r"""
set -u
disk="$1"; shift
mkdir -p "$disk"
mount -t tmpfs -o size=48m tmpfs "$disk" || exit 99
"$@" --workdir "$disk/full" > "$disk/../disk_full.out" 2> "$disk/../disk_full.err" &
pid=$!
while [ ! -d "$disk/full/checkpoints/10" ] && kill -0 $pid 2>/dev/null; do sleep 0.2; done
dd if=/dev/zero of="$disk/filler" bs=1M > /dev/null 2>&1
wait $pid; echo "full_exit=$?"
ls "$disk/full/checkpoints" | tr '\n' ' '; echo
rm -f "$disk/filler"
"$@" --workdir "$disk/full" > /dev/null 2> "$disk/../disk_full_resume.err"; echo "full_resume_exit=$?"
cp -r "$disk/full" "$disk/../disk_full_run"
# Unwritable: the run loses the right to override permissions (root otherwise writes anywhere), then its
# checkpoint directory is made read-only under it.
setpriv --bounding-set -dac_override,-dac_read_search,-fowner "$@" --workdir "$disk/ro" \
  > "$disk/../disk_ro.out" 2> "$disk/../disk_ro.err" &
pid=$!
while [ ! -d "$disk/ro/checkpoints/10" ] && kill -0 $pid 2>/dev/null; do sleep 0.2; done
chmod 555 "$disk/ro/checkpoints"
wait $pid; echo "ro_exit=$?"
chmod 755 "$disk/ro/checkpoints"
"$@" --workdir "$disk/ro" > /dev/null 2> "$disk/../disk_ro_resume.err"; echo "ro_resume_exit=$?"
cp -r "$disk/ro" "$disk/../disk_ro_run"
umount "$disk"
"""


def disk_trials(root):
  spec = ["configs/vae/conv_digits.py:smoke", "train.steps=400", "train.ckpt_every=5", "train.log_every=1",
          "train.eval_every=0", "train.keep=3"]
  base = os.path.join(root, "disk")
  shutil.rmtree(base, ignore_errors=True)
  os.makedirs(base)
  cmd = train_cmd(spec, "X")[:-2]  # without --workdir X: the script adds it
  cmd = [c for c in cmd]
  proc = run(["unshare", "-m", "--propagation", "private", "bash", "-c", DISK_SCRIPT, "drill",
              os.path.join(base, "mnt"), *cmd], timeout=1800)
  facts = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
  if proc.returncode == 99 or not facts:
    return dict(skipped=f"cannot mount a tmpfs here ({proc.stderr.strip()[:120]})")
  results = {}
  for mode, err_file in (("full", "disk_full.err"), ("ro", "disk_ro.err")):
    with open(os.path.join(base, err_file)) as f:
      lines = [line for line in f.read().splitlines() if line.strip()]
    resumed = facts.get(f"{mode}_resume_exit") == "0"
    ok = facts.get(f"{mode}_exit") == "2" and len(lines) == 1 and "cannot write" in lines[0] and resumed
    results[mode] = dict(ok=ok, exit=facts.get(f"{mode}_exit"), stderr=lines[:3], resumed=resumed)
  return results


# ---------------------------------------------------------------------------------------------------- table

def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--root", default="/tmp/jgen_drill")
  parser.add_argument("--kills", type=int, default=20, help="kill -9 trials per family")
  parser.add_argument("--only", default="kill,damage,nan,concurrent,processes,bad_inputs,disk")
  args = parser.parse_args()
  parts = args.only.split(",")
  os.makedirs(args.root, exist_ok=True)
  rows, details = [], {}
  t0 = time.perf_counter()

  if "kill" in parts:
    kills = kill_trials(args.root, args.kills)
    details["kill"] = kills
    n = sum(k["trials"] for k in kills.values())
    same = sum(k["identical"] for k in kills.values())
    per = ", ".join(f"{name} {k['identical']}/{k['trials']}" for name, k in kills.items())
    rows.append(("kill -9 at a random moment, then the same command", f"{same}/{n} identical ({per})",
                 f"{n}/{n} identical", same == n))
  if "damage" in parts:
    damage = damage_trials(args.root)
    details["damage"] = damage
    n = len(damage)
    det = sum(d["detected"] for d in damage.values())
    one = sum(d["detected"] and d["one_line"] for d in damage.values())
    healed = sum(d["healed"] for d in damage.values())
    rows.append((f"latest checkpoint damaged in {n} ways", f"{det} detected, {one} in one line, {healed} healed",
                 f"{n}/{n} detected, in one line, healed", det == one == healed == n))
  if "nan" in parts:
    nan = nan_trials(args.root)
    details["nan"] = nan
    good = sum(v["ok"] for v in nan.values())
    rows.append(("NaN forced " + ", ".join(nan), f"{good}/{len(nan)}: never on disk, named checkpoint kept, "
                 "resumed with a lower lr" if good == len(nan) else f"{good}/{len(nan)} as promised",
                 "a NaN state never written; the named good checkpoint exists", good == len(nan)))
  if "concurrent" in parts:
    conc = concurrent_trials(args.root)
    details["concurrent"] = conc
    rows.append(("two `jgen train` on one workdir (and a killed holder's lock)",
                 f"{conc['good']}/{conc['trials']}: one refused in one line, the other identical, lock taken over",
                 "the second refuses in one line", conc["good"] == conc["trials"]))
  if "processes" in parts:
    from experiments.reliability import processes
    proc = processes.run(os.path.join(args.root, "processes"))
    details["processes"] = proc
    rows.append(("2 processes (jax.distributed on localhost) vs 1",
                 f"max abs. difference of logged metrics {proc['max_abs_diff']:.2e} over {proc['steps']} steps",
                 "equal to float tolerance", bool(proc["equal"])))
  if "bad_inputs" in parts:
    from experiments.reliability import bad_inputs
    bad = bad_inputs.run(os.path.join(args.root, "bad_inputs"))
    details["bad_inputs"] = bad
    rows.append((f"{bad['cases']} bad inputs", f"{bad['clean']} clean (one line, exit 2, nothing changed)",
                 f"{bad['cases']}/{bad['cases']}", bad["clean"] == bad["cases"]))
  if "disk" in parts:
    disk = disk_trials(args.root)
    details["disk"] = disk
    if "skipped" in disk:
      rows.append(("disk full / read-only during a checkpoint", disk["skipped"], "one line, exit 2, data kept", False))
    else:
      now = "; ".join(f"{mode}: exit {d['exit']}, {len(d['stderr'])} stderr line(s), resumed {d['resumed']}"
                      for mode, d in disk.items())
      rows.append(("disk full / checkpoint directory made read-only during training", now, "one line, exit 2, data kept",
                   all(d["ok"] for d in disk.values())))

  print("\n| drill | now | goal | met |\n| --- | --- | --- | --- |")
  for name, now, goal, met in rows:
    print(f"| {name} | {now} | {goal} | {'yes' if met else 'NO'} |")
  print(f"\n({time.perf_counter() - t0:.0f} s)")
  failures = json.dumps(details, indent=1, default=str)
  with open(os.path.join(args.root, "details.json"), "w") as f:
    f.write(failures)
  for name, now, goal, met in rows:
    if not met:
      print(f"details of what failed: {os.path.join(args.root, 'details.json')}")
      break


if __name__ == "__main__":
  main()
