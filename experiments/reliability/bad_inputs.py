"""Every bad input to `jgen` is one line on stderr, exit code 2, no traceback, and nothing changed.

  .venv/bin/python experiments/reliability/bad_inputs.py --root /tmp/jgen_bad_inputs

Each case runs `python -m jgen ...` in a fresh process, in a scratch directory S (its working directory, which
holds a results table at experiments/RESULTS.md) next to a copy T of a trained 4-step VAE run and, where a case
names it, a copy P of a trained 2-step label-conditional DDPM on 2-D moons (conditions and sampler options).
Before and after, every file and directory under S, T and P is hashed: a clean case changes nothing.

Cases about read-only places chmod them; run as root, the command runs under `setpriv` without the capabilities
that let root write anyway (CAP_DAC_OVERRIDE and friends), so the check is the same as for any user.
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
DDPM = os.path.join(REPO, "configs/diffusion/ddpm_toy2d.py")
UNET = os.path.join(REPO, "configs/diffusion/ddpm_fashion_mnist.py")
PIXELCNN = os.path.join(REPO, "configs/autoregressive/pixelcnn_fashion_mnist.py")
GATED = os.path.join(REPO, "configs/autoregressive/gated_pixelcnn_fashion_mnist.py")
# A results table as `jgen results` writes it (one it may replace): the scratch directory's experiments/RESULTS.md.
TABLE = "# jgen results\n\nGenerated from each run's eval.json by `jgen results`; do not edit by hand.\n"
# Capabilities that let root write where permissions say no; read-only cases run without them.
DROP_CAPS = ["setpriv", "--inh-caps", "-dac_override,-dac_read_search,-fowner",
             "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


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


def _read_only(*rels, make_dir=True):
  """A setup that makes S/rel (or T/..., P/... with that prefix) read-only: a directory (made if missing) or a file."""
  def setup(s, t):
    for rel in rels:
      path = os.path.join(t, rel[2:]) if rel.startswith("T/") else os.path.join(s, rel)
      if rel == "T":
        path = t
      if make_dir and not os.path.exists(path):
        os.makedirs(path)
      os.chmod(path, 0o555 if os.path.isdir(path) else 0o444)
  return setup


def _results_fixture(eval_text):
  def setup(s, t):
    _write(os.path.join(s, "runs", "a", "eval.json"), eval_text)
  return setup


S, T, P = "{S}", "{T}", "{P}"
TRAIN = ["train", VAE + ":smoke", "--workdir", f"{S}/w"]
SAMPLE_DDPM = ["sample", "--workdir", P, "--out", f"{S}/s.png"]
# (name, argv with {S}/{T}/{P} placeholders, extra environment, setup(S, T) or None[, "read-only": run without
#  root's capabilities to write anyway])
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
    # --- found by trying the CLI as a hostile user: config values (each a traceback, or silently accepted, before)
    ("--set train.seed=-1", TRAIN + ["--set", "train.seed=-1"], {}, None),
    ("--set train.seed=2**40", TRAIN + ["--set", f"train.seed={2**40}"], {}, None),
    ("--set train.eval_batches=0", TRAIN + ["--set", "train.eval_batches=0"], {}, None),
    ("--set optim.decay=cosine over 0 steps", TRAIN + ["--set", "optim.decay=cosine"], {}, None),
    ("cosine decay shorter than its warm-up", TRAIN + ["--set", "optim.decay=cosine", "--set", "optim.decay_steps=5",
                                                      "--set", "optim.warmup_steps=10"], {}, None),
    ("--set model.channels=()", TRAIN + ["--set", "model.channels=()"], {}, None),
    ("--set model.name=ppca on a VAE config", TRAIN + ["--set", "model.name=ppca"], {}, None),
    ("--set model.name=gan.dcgan on a VAE config", TRAIN + ["--set", "model.name=gan.dcgan"], {}, None),
    ("--set model.name=''", TRAIN + ["--set", "model.name=''"], {}, None),
    ("--set ''", TRAIN + ["--set", ""], {}, None),
    ("train an empty config path", ["train", "", "--workdir", f"{S}/w"], {}, None),
    ("train --workdir ''", ["train", VAE + ":smoke", "--workdir", ""], {}, None),
    ("sample --workdir ''", ["sample", "--workdir", "", "--out", f"{S}/s.png"], {}, None),
    ("evaluate --workdir ''", ["evaluate", "--workdir", ""], {}, None),
    ("config whose model block is a number", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file("import ml_collections\ndef get_config(arg='full'):\n  return ml_collections.ConfigDict("
                 "{'model': 3, 'data': {'name': 'digits'}, 'train': {'steps': 2}})\n")),
    ("config whose model.name is a number", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file(GOOD_BODY.replace("name='vae.conv'", "name=5"))),
    ("get_config calls sys.exit", ["train", f"{S}/cfg.py", "--workdir", f"{S}/w"], {},
     config_file("import sys\ndef get_config(arg='full'):\n  sys.exit(3)\n")),
    ("PixelCNN model.features=1", ["train", PIXELCNN + ":smoke", "--workdir", f"{S}/w", "--set", "model.features=1"],
     {}, None),
    ("PixelCNN model.features=-3", ["train", PIXELCNN + ":smoke", "--workdir", f"{S}/w", "--set",
                                    "model.features=-3"], {}, None),
    ("PixelCNN model.temperature=0", ["train", PIXELCNN + ":smoke", "--workdir", f"{S}/w", "--set",
                                      "model.temperature=0"], {}, None),
    ("PixelCNN model.temperature=-1", ["train", PIXELCNN + ":smoke", "--workdir", f"{S}/w", "--set",
                                       "model.temperature=-1"], {}, None),
    ("PixelCNN model.head=bogus", ["train", PIXELCNN + ":smoke", "--workdir", f"{S}/w", "--set", "model.head=bogus"],
     {}, None),
    ("gated PixelCNN model.kernel=2", ["train", GATED + ":smoke", "--workdir", f"{S}/w", "--set", "model.kernel=2"],
     {}, None),
    ("gated PixelCNN model.kernel=0", ["train", GATED + ":smoke", "--workdir", f"{S}/w", "--set", "model.kernel=0"],
     {}, None),
    ("U-Net attention at a missing level", ["train", UNET + ":smoke", "--workdir", f"{S}/w", "--set",
                                            "model.attention_levels=(7,)"], {}, None),
    ("U-Net heads that do not divide its channels", ["train", UNET + ":smoke", "--workdir", f"{S}/w", "--set",
                                                     "model.num_heads=3"], {}, None),
    ("U-Net model.channel_mults=()", ["train", UNET + ":smoke", "--workdir", f"{S}/w", "--set",
                                      "model.channel_mults=()"], {}, None),
    ("DDPM model.num_steps=1", ["train", DDPM + ":smoke", "--workdir", f"{S}/w", "--set", "model.num_steps=1"], {},
     None),
    ("DDPM linear schedule over 10 steps", ["train", DDPM + ":smoke", "--workdir", f"{S}/w", "--set",
                                            "model.num_steps=10"], {}, None),
    ("DDPM more DDIM steps than steps", ["train", DDPM + ":smoke", "--workdir", f"{S}/w", "--set",
                                         "model.sample_steps=5000"], {}, None),
    ("DDPM model.sampler=bogus", ["train", DDPM + ":smoke", "--workdir", f"{S}/w", "--set", "model.sampler=bogus"],
     {}, None),
    # --- data directories
    ("JGEN_DATA_DIR under a file", TRAIN, {"JGEN_DATA_DIR": f"{S}/afile/tfds"},
     lambda s, t: _write(os.path.join(s, "afile"), "x")),
    ("JGEN_DATA_DIR read-only", ["data", "prepare", "toy2d_moons"], {"JGEN_DATA_DIR": f"{S}/ro/tfds"},
     _read_only("ro"), "read-only"),
    ("data list with a name", ["data", "list", "digits"], {}, None),
    ("data prepare --source for a dataset with no files", ["data", "prepare", "digits", "--source", S], {}, None),
    # --- sample: seeds, a family's conditions and sampler options, read-only places
    ("sample --seed -1", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--seed", "-1"], {}, None),
    ("sample --seed 2**80", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--seed", str(2**80)], {}, None),
    ("sample --kw =3", ["sample", "--workdir", T, "--out", f"{S}/s.png", "--kw", "=3"], {}, None),
    ("sample DDPM --kw eta=-1", SAMPLE_DDPM + ["--kw", "eta=-1"], {}, None),
    ("sample DDPM --kw steps=0", SAMPLE_DDPM + ["--kw", "steps=0"], {}, None),
    ("sample DDPM --kw steps=5000", SAMPLE_DDPM + ["--kw", "steps=5000"], {}, None),
    ("sample DDPM --kw steps=abc", SAMPLE_DDPM + ["--kw", "steps=abc"], {}, None),
    ("sample DDPM --kw sampler=bogus", SAMPLE_DDPM + ["--kw", "sampler=bogus"], {}, None),
    ("sample DDPM --kw guidance=-5", SAMPLE_DDPM + ["--kw", "guidance=-5"], {}, None),
    ("sample DDPM --kw guidance=abc", SAMPLE_DDPM + ["--kw", "guidance=abc"], {}, None),
    ("sample DDPM --kw label=2 (2 classes)", SAMPLE_DDPM + ["--kw", "label=2"], {}, None),
    ("sample DDPM --kw bogus=1", SAMPLE_DDPM + ["--kw", "bogus=1"], {}, None),
    ("sample --out into a read-only directory", ["sample", "--workdir", T, "--out", f"{S}/ro/s.png"], {},
     _read_only("ro"), "read-only"),
    ("sample --out over a read-only file", ["sample", "--workdir", T, "--out", f"{S}/old.png"], {},
     lambda s, t: (_write(os.path.join(s, "old.png"), "earlier"), _read_only("old.png")(s, t)), "read-only"),
    # --- evaluate and results in read-only places, over files they did not write
    ("evaluate a read-only workdir", ["evaluate", "--workdir", T, "--metrics", "nll"], {}, _read_only("T"),
     "read-only"),
    ("evaluate --num-examples -5", ["evaluate", "--workdir", T, "--metrics", "nll", "--num-examples", "-5"], {}, None),
    ("results --out into a read-only directory", ["results", T, "--out", f"{S}/ro/RESULTS.md"], {}, _read_only("ro"),
     "read-only"),
    ("results --out over a handwritten file", ["results", T, "--out", f"{S}/README.md"], {},
     lambda s, t: _write(os.path.join(s, "README.md"), "my notes\n")),
    ("results --out x.txt", ["results", T, "--out", f"{S}/x.txt"], {}, None),
    ("results: eval.json metrics of the wrong shape", ["results", f"{S}/runs"], {},
     _results_fixture('{"metrics": {"nll": 1.0}}')),
    ("results: eval.json run block a list", ["results", f"{S}/runs"], {},
     _results_fixture('{"metrics": {}, "run": [1]}')),
    ("evaluate over an eval.json whose skipped is a list", ["evaluate", "--workdir", T, "--metrics", "nll",
                                                            "--num-examples", "50"], {},
     _garble("eval.json", '{"step": 4, "split": "test", "metrics": {}, "skipped": [1]}')),
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


def train_fixture(root, name, config, *overrides):
  workdir = os.path.join(root, name)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    shutil.rmtree(workdir, ignore_errors=True)
    sets = [arg for item in overrides for arg in ("--set", item)]
    proc = subprocess.run([sys.executable, "-m", "jgen", "train", config, "--workdir", workdir, "--quiet", *sets],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "XLA_FLAGS": ""})
    if proc.returncode:
      raise RuntimeError(f"fixture run {name} failed: {proc.stderr[-1500:]}")
  return workdir


def _writable_again(*roots):
  """Undoes a case's chmod so the case directory can be removed."""
  for root in roots:
    for d, dirs, files in os.walk(root):
      for name in dirs + files:
        os.chmod(os.path.join(d, name), 0o755 if name in dirs else 0o644)
    if os.path.isdir(root):
      os.chmod(root, 0o755)


def run_case(root, fixtures, index, case):
  name, argv, env, setup, *flags = case
  case_dir = os.path.join(root, f"case{index}")
  s, t, p = (os.path.join(case_dir, d) for d in ("S", "T", "P"))
  shutil.rmtree(case_dir, ignore_errors=True)
  os.makedirs(os.path.join(s, "experiments"))
  _write(os.path.join(s, "experiments", "RESULTS.md"), TABLE)
  shutil.copytree(fixtures["vae"], t)
  _write(os.path.join(t, "eval.json"), json.dumps({"metrics": {"nll": 1.0}}))
  if any(P in a for a in argv):
    shutil.copytree(fixtures["ddpm"], p)
  if setup:
    setup(s, t)
  fill = lambda text: text.replace(S, s).replace(T, t).replace(P, p)
  before = snapshot(s, t, p)
  full_env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": REPO, **{k: fill(v) for k, v in env.items()}}
  command = [sys.executable, "-m", "jgen", *map(fill, argv)]
  if "read-only" in flags and os.geteuid() == 0:
    if not shutil.which("setpriv"):
      return name, "needs setpriv (util-linux) to test a read-only place as root", ""
    command = DROP_CAPS + command
  try:
    proc = subprocess.run(command, capture_output=True, text=True, cwd=s, env=full_env, timeout=600)
  except subprocess.TimeoutExpired:
    return name, "timed out", ""
  after = snapshot(s, t, p)
  _writable_again(s, t, p)
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
  shutil.rmtree(case_dir, ignore_errors=True)
  return name, "; ".join(problems), " | ".join(lines)


def run(workdir_root: str, jobs: int = 2) -> dict:
  os.makedirs(workdir_root, exist_ok=True)
  fixtures = {"vae": train_fixture(workdir_root, "trained", VAE + ":smoke", "train.steps=4", "train.ckpt_every=2",
                                   "train.eval_every=4"),
              "ddpm": train_fixture(workdir_root, "trained_ddpm", DDPM + ":smoke", "train.steps=2",
                                    "train.ckpt_every=2", "train.eval_every=2", "model.label_conditional=True",
                                    "model.bound_timesteps=4", "model.log_prob_timesteps=4", "train.sample_num=4")}
  with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    results = list(pool.map(lambda ic: run_case(workdir_root, fixtures, *ic), enumerate(CASES)))
  failures = [(name, problem) for name, problem, _ in results if problem]
  return {"cases": len(CASES), "clean": len(CASES) - len(failures), "failures": failures,
          "messages": {name: message for name, _, message in results}}


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--root", default="/tmp/jgen_bad_inputs")
  parser.add_argument("--jobs", type=int, default=2)
  parser.add_argument("--show", action="store_true", help="also print every case's stderr")
  args = parser.parse_args()
  out = run(args.root, args.jobs)
  if args.show:
    for name, message in out["messages"].items():
      print(f"{name}: {message}")
  print(f"| {out['cases']} bad inputs | {out['clean']} clean (one line, exit 2, nothing changed) |")
  for name, problem in out["failures"]:
    print(f"- {name}: {problem}")
