"""Every bad input to `jgen` is one line on stderr, exit code 2, no traceback, and nothing changed.

  .venv/bin/python experiments/reliability/bad_inputs.py --root /tmp/jgen_bad_inputs

Each case runs `python -m jgen ...` in a fresh process, in a scratch directory S (its working directory, which
holds a results table at experiments/RESULTS.md) next to a copy T of a trained 4-step VAE run. Before and after,
every file under S and T is hashed: a clean case changes nothing.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VAE = os.path.join(REPO, "configs/vae/conv_digits.py")
FMNIST_VAE = os.path.join(REPO, "configs/vae/conv_fashion_mnist.py")


def _write(path, text, mode="w"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, mode) as f:
    f.write(text)


def config_file(body):
  """A setup that writes S/cfg.py with `body`."""
  return lambda s, t: _write(os.path.join(s, "cfg.py"), body)


GOOD_BODY = ("from jgen.config_schema import experiment\n"
             "def get_config(arg='full'):\n"
             "  return experiment(model=dict(name='vae.conv', latent_dim=2, channels=(8, 8)),\n"
             "                    data=dict(name='digits', batch_size=8), train=dict(steps=2))\n")


def _mark_no_checkpoint(s, t):
  shutil.rmtree(os.path.join(t, "checkpoints"))


def _garble(name, text):
  return lambda s, t: _write(os.path.join(t, name), text)


def _damage_all_checkpoints(s, t):
  ckpt = os.path.join(t, "checkpoints")
  for step in os.listdir(ckpt):
    _write(os.path.join(ckpt, step, "state", "_METADATA"), "")


def _results_fixture(eval_text):
  def setup(s, t):
    _write(os.path.join(s, "runs", "a", "eval.json"), eval_text)
  return setup


S, T = "{S}", "{T}"
TRAIN = ["train", VAE + ":smoke", "--workdir", f"{S}/w"]
# (name, argv with {S}/{T} placeholders, extra environment, setup(S, T) or None)
CASES = [
    # --- config files
    ("config file missing", ["train", "/nonexistent/cfg.py", "--workdir", f"{S}/w"], {}, None),
    ("config path not .py", ["train", f"{S}/cfg.txt", "--workdir", f"{S}/w"], {},
     lambda s, t: _write(os.path.join(s, "cfg.txt"), GOOD_BODY)),
    ("config path is a directory", ["train", f"{S}", "--workdir", f"{S}/w"], {}, None),
    ("config with a syntax error", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {}, config_file("def get_config(:\n")),
    ("get_config raises", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file("def get_config(arg='full'):\n  raise RuntimeError('boom')\n")),
    ("no get_config", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {}, config_file("x = 1\n")),
    ("get_config() takes no variant", ["train", f"{S}/cfg.py:smoke", "--workdir", f"{S}/w"], {},
     config_file(GOOD_BODY.replace("arg='full'", ""))),
    ("get_config returns None", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file("def get_config(arg='full'):\n  return None\n")),
    ("get_config returns a dict of junk", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file("def get_config(arg='full'):\n  return {'model': 3}\n")),
    ("config imports a missing module", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file("import no_such_module\n" + GOOD_BODY)),
    ("config file not UTF-8", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     lambda s, t: _write(os.path.join(s, "cfg.py"), b"x = '\xff\xfe'\n", "wb")),
    ("config file empty", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {}, config_file("")),
    ("unknown variant", ["train", VAE + ":bogus", "--workdir", f"{S}/w"], {}, None),
    ("empty variant", ["train", VAE + ":", "--workdir", f"{S}/w"], {}, None),
    ("config model missing", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file("import ml_collections\ndef get_config(arg='full'):\n  return ml_collections.ConfigDict({'a': 1})\n")),
    ("config file with an unknown key", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file(GOOD_BODY.replace("latent_dim=2", "latent_dimm=2"))),
    # --- --set
    ("--set without =", TRAIN + ["--set", "optim.lr"], {}, None),
    ("--set empty key", TRAIN + ["--set", "=3"], {}, None),
    ("--set unknown key", TRAIN + ["--set", "model.bogus=1"], {}, None),
    ("--set unknown block", TRAIN + ["--set", "bogus.x=1"], {}, None),
    ("--set wrong type int", TRAIN + ["--set", "data.batch_size=abc"], {}, None),
    ("--set wrong type float", TRAIN + ["--set", "optim.lr=fast"], {}, None),
    ("--set float for int", TRAIN + ["--set", "train.steps=2.5"], {}, None),
    ("--set optim.name=adamz", TRAIN + ["--set", "optim.name=adamz"], {}, None),
    ("--set optim.decay=wobbly", TRAIN + ["--set", "optim.decay=wobbly"], {}, None),
    ("--set model.latent_dim=-2", TRAIN + ["--set", "model.latent_dim=-2"], {}, None),
    ("--set model.latent_dim=0", TRAIN + ["--set", "model.latent_dim=0"], {}, None),
    ("--set data.batch_size=0", TRAIN + ["--set", "data.batch_size=0"], {}, None),
    ("--set data.batch_size=-5", TRAIN + ["--set", "data.batch_size=-5"], {}, None),
    ("--set train.steps=-1", TRAIN + ["--set", "train.steps=-1"], {}, None),
    ("--set optim.lr=-1", TRAIN + ["--set", "optim.lr=-1"], {}, None),
    ("--set optim.lr=0", TRAIN + ["--set", "optim.lr=0"], {}, None),
    ("--set optim.lr=nan", TRAIN + ["--set", "optim.lr=nan"], {}, None),
    ("--set optim.ema_decay=1.5", TRAIN + ["--set", "optim.ema_decay=1.5"], {}, None),
    ("--set optim.b1=2", TRAIN + ["--set", "optim.b1=2"], {}, None),
    ("--set optim.grad_clip=-1", TRAIN + ["--set", "optim.grad_clip=-1"], {}, None),
    ("--set model.name=nonexistent", TRAIN + ["--set", "model.name=nonexistent"], {}, None),
    ("--set data.name=nonexistent", TRAIN + ["--set", "data.name=nonexistent"], {}, None),
    ("--set train.evals=bogus:10", TRAIN + ["--set", "train.evals=bogus:10"], {}, None),
    ("--set train.evals=fid:abc", TRAIN + ["--set", "train.evals=fid:abc"], {}, None),
    ("--set train.evals=fid on digits", TRAIN + ["--set", "train.evals=fid:100"], {}, None),
    ("--set mesh.fsdp=3", TRAIN + ["--set", "mesh.fsdp=3"], {}, None),
    ("--set mesh.fsdp=0", TRAIN + ["--set", "mesh.fsdp=0"], {}, None),
    ("--set data.validation_size=100000", TRAIN + ["--set", "data.validation_size=100000"], {}, None),
    ("--set train.keep=0", TRAIN + ["--set", "train.keep=0"], {}, None),
    ("--set train.batches_per_step=0", TRAIN + ["--set", "train.batches_per_step=0"], {}, None),
    ("--set train.log_every=-1", TRAIN + ["--set", "train.log_every=-1"], {}, None),
    ("--set train.ckpt_every=-5", TRAIN + ["--set", "train.ckpt_every=-5"], {}, None),
    ("--set model.channels=(0,)", TRAIN + ["--set", "model.channels=(0,)"], {}, None),
    ("--set data.eval_batch_size=-1", TRAIN + ["--set", "data.eval_batch_size=-1"], {}, None),
    ("--set train.sample_num=-4", TRAIN + ["--set", "train.sample_num=-4"], {}, None),
    # --- data and workdirs for train
    ("JGEN_DATA_DIR is a file", TRAIN, {"JGEN_DATA_DIR": f"{S}/afile"},
     lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("Fashion-MNIST not prepared and its source missing", ["train", FMNIST_VAE + ":smoke", "--workdir", f"{S}/w",
                                                           "--set", "data.source_dir=/nonexistent/fmnist"],
     {"JGEN_DATA_DIR": f"{S}/tfds"}, None),
    ("workdir is a file", ["train", VAE + ":smoke", "--workdir", f"{S}/afile"], {},
     lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("workdir under a file", ["train", VAE + ":smoke", "--workdir", f"{S}/afile/run"], {},
     lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("workdir of another config", ["train", VAE + ":smoke", "--workdir", T, "--set", "model.latent_dim=3"], {}, None),
    ("workdir foreign and non-empty", ["train", VAE + ":smoke", "--workdir", f"{S}/foreign"], {},
     lambda s, t: _write(os.path.join(s, "foreign", "notes.txt"), "mine")),
    ("train on a garbled config.json", ["train", VAE + ":smoke", "--workdir", T], {},
     _garble("config.json", '{"model": ')),
    ("train on a config.json that is a list", ["train", VAE + ":smoke", "--workdir", T], {},
     _garble("config.json", "[1, 2]")),
    ("train with every checkpoint damaged", ["train", VAE + ":smoke", "--workdir", T, "--set", "train.steps=4",
                                             "--set", "train.ckpt_every=2", "--set", "train.eval_every=4"], {},
     _damage_all_checkpoints),
    ("train without --workdir", ["train", VAE + ":smoke"], {}, None),
    ("train with an unknown flag", TRAIN + ["--bogus"], {}, None),
    ("unknown command", ["bogus"], {}, None),
    ("no command", [], {}, None),
    # --- sample
    ("sample: workdir missing", ["sample", "--workdir", f"{S}/nothing", "--out", f"{S}/s.png"], {}, None),
    ("sample: workdir is a file", ["sample", "--workdir", f"{S}/afile", "--out", f"{S}/s.png"], {},
     lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("sample: no checkpoint yet", ["sample", "--workdir", T, "--out", f"{S}/s.png"], {}, _mark_no_checkpoint),
    ("sample: garbled config.json", ["sample", "--workdir", T, "--out", f"{S}/s.png"], {},
     _garble("config.json", "{{{")),
    ("sample: every checkpoint damaged", ["sample", "--workdir", T, "--out", f"{S}/s.png"], {},
     _damage_all_checkpoints),
    ("sample --num 0", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--num", "0"], {}, None),
    ("sample --num -3", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--num", "-3"], {}, None),
    ("sample --num 10^12", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--num", "1000000000000"], {}, None),
    ("sample --num abc", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--num", "abc"], {}, None),
    ("sample --out an existing directory", ["sample", "--workdir", T, "--out", f"{S}/outdir"], {},
     lambda s, t: os.makedirs(os.path.join(s, "outdir"))),
    ("sample --out in a missing directory", ["sample", "--workdir", T, "--out", f"{S}/no/such/s.png"], {}, None),
    ("sample --out under a file", ["sample", "--workdir", T, "--out", f"{S}/afile/s.png"], {},
     lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("sample --out with an unknown extension", ["sample", "--workdir", T, "--out", f"{S}/s.txt"], {}, None),
    ("sample --kw bogus=1", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--kw", "bogus=1"], {}, None),
    ("sample --kw label=99", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--kw", "label=99"], {}, None),
    ("sample --kw without =", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--kw", "label"], {}, None),
    ("sample --kw guidance on a VAE", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--kw", "guidance=2"], {},
     None),
    ("sample --checkpoint bogus", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--checkpoint", "bogus"], {},
     None),
    ("sample --seed abc", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--seed", "abc"], {}, None),
    ("sample without --out", ["sample", "--workdir", T], {}, None),
    # --- evaluate
    ("evaluate: workdir missing", ["evaluate", "--workdir", f"{S}/nothing"], {}, None),
    ("evaluate: no checkpoint yet", ["evaluate", "--workdir", T, "--metrics", "nll"], {}, _mark_no_checkpoint),
    ("evaluate: garbled config.json", ["evaluate", "--workdir", T, "--metrics", "nll"], {},
     _garble("config.json", "not json")),
    ("evaluate --metrics ,", ["evaluate", "--workdir", T, "--metrics", ","], {}, None),
    ("evaluate --metrics ''", ["evaluate", "--workdir", T, "--metrics", ""], {}, None),
    ("evaluate --metrics bogus", ["evaluate", "--workdir", T, "--metrics", "nll,bogus"], {}, None),
    ("evaluate --metrics fid on 8x8 digits", ["evaluate", "--workdir", T, "--metrics", "fid"], {}, None),
    ("evaluate --metrics pr on 8x8 digits", ["evaluate", "--workdir", T, "--metrics", "pr"], {}, None),
    ("evaluate --num-samples 0", ["evaluate", "--workdir", T, "--num-samples", "0"], {}, None),
    ("evaluate --num-samples -1", ["evaluate", "--workdir", T, "--num-samples", "-1"], {}, None),
    ("evaluate --num-samples abc", ["evaluate", "--workdir", T, "--num-samples", "abc"], {}, None),
    ("evaluate --num-examples 0", ["evaluate", "--workdir", T, "--metrics", "nll", "--num-examples", "0"], {}, None),
    ("evaluate --checkpoint bogus", ["evaluate", "--workdir", T, "--checkpoint", "bogus"], {}, None),
    ("evaluate: eval.json is a JSON list", ["evaluate", "--workdir", T, "--metrics", "nll", "--num-examples", "50"],
     {}, _garble("eval.json", "[1, 2]")),
    ("evaluate: eval.json is garbled", ["evaluate", "--workdir", T, "--metrics", "nll", "--num-examples", "50"],
     {}, _garble("eval.json", "{oops")),
    # --- results
    ("results: missing directory", ["results", f"{S}/nothing"], {}, None),
    ("results: a file", ["results", f"{S}/afile"], {}, lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("results: no runs in it", ["results", f"{S}/empty"], {}, lambda s, t: os.makedirs(os.path.join(s, "empty"))),
    ("results --out a directory", ["results", T, "--out", f"{S}/outdir"], {},
     lambda s, t: os.makedirs(os.path.join(s, "outdir"))),
    ("results --out under a file", ["results", T, "--out", f"{S}/afile/x.md"], {},
     lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("results: eval.json a JSON list", ["results", f"{S}/runs"], {}, _results_fixture("[1, 2]")),
    ("results: eval.json garbled", ["results", f"{S}/runs"], {}, _results_fixture("{oops")),
    # --- data
    ("data prepare without a name", ["data", "prepare"], {}, None),
    ("data prepare an unknown dataset", ["data", "prepare", "bogus"], {}, None),
    ("data prepare from a missing source", ["data", "prepare", "fashion_mnist", "--source", "/nonexistent"],
     {"JGEN_DATA_DIR": f"{S}/tfds"}, None),
    ("data with an unknown action", ["data", "bogus"], {}, None),
    ("list with an extra argument", ["list", "extra"], {}, None),
]


def snapshot(*roots):
  out = {}
  for root in roots:
    for d, dirs, files in os.walk(root):
      for name in dirs:
        out[os.path.join(d, name)] = "dir"
      for name in files:
        path = os.path.join(d, name)
        if name == ".jgen_train.lock":
          continue  # the lock file's content is the last holder's pid
        with open(path, "rb") as f:
          out[path] = hashlib.sha256(f.read()).hexdigest()
  return out


def train_fixture(root):
  workdir = os.path.join(root, "trained")
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    shutil.rmtree(workdir, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "jgen", "train", VAE + ":smoke", "--workdir", workdir, "--quiet",
                           "--set", "train.steps=4", "--set", "train.ckpt_every=2", "--set", "train.eval_every=4"],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "XLA_FLAGS": ""})
    if proc.returncode:
      raise RuntimeError(f"fixture run failed: {proc.stderr[-1500:]}")
  return workdir


def run_case(root, trained, index, case):
  name, argv, env, setup = case
  s, t = os.path.join(root, f"case{index}", "S"), os.path.join(root, f"case{index}", "T")
  shutil.rmtree(os.path.dirname(s), ignore_errors=True)
  os.makedirs(os.path.join(s, "experiments"))
  _write(os.path.join(s, "experiments", "RESULTS.md"), "# earlier results\n")
  shutil.copytree(trained, t)
  _write(os.path.join(t, "eval.json"), json.dumps({"metrics": {"nll": 1.0}}))
  if setup:
    setup(s, t)
  fill = lambda text: text.replace(S, s).replace(T, t)
  before = snapshot(s, t)
  full_env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": REPO, **{k: fill(v) for k, v in env.items()}}
  try:
    proc = subprocess.run([sys.executable, "-m", "jgen", *map(fill, argv)], capture_output=True, text=True,
                          cwd=s, env=full_env, timeout=600)
  except subprocess.TimeoutExpired:
    return name, "timed out"
  after = snapshot(s, t)
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  problems = []
  if proc.returncode != 2:
    problems.append(f"exit {proc.returncode}")
  if len(lines) != 1 or not lines[0].startswith("jgen: error:"):
    problems.append(f"{len(lines)} stderr lines: {' | '.join(lines[:3])[:300]}")
  if "Traceback" in proc.stderr:
    problems.append("traceback")
  if before != after:
    changed = sorted(set(before) ^ set(after) | {k for k in before if k in after and before[k] != after[k]})
    problems.append(f"changed {[os.path.relpath(c, os.path.dirname(s)) for c in changed][:4]}")
  shutil.rmtree(os.path.dirname(s), ignore_errors=True)
  return name, "; ".join(problems)


def run(workdir_root: str, jobs: int = 2) -> dict:
  os.makedirs(workdir_root, exist_ok=True)
  trained = train_fixture(workdir_root)
  with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    results = list(pool.map(lambda ic: run_case(workdir_root, trained, *ic), enumerate(CASES)))
  failures = [(name, problem) for name, problem in results if problem]
  return {"cases": len(CASES), "clean": len(CASES) - len(failures), "failures": failures}


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--root", default="/tmp/jgen_bad_inputs")
  parser.add_argument("--jobs", type=int, default=2)
  args = parser.parse_args()
  out = run(args.root, args.jobs)
  print(f"| {out['cases']} bad inputs | {out['clean']} clean (one line, exit 2, nothing changed) |")
  for name, problem in out["failures"]:
    print(f"- {name}: {problem}")
