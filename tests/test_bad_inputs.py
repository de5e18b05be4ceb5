"""A sample of bad inputs (experiments/reliability/bad_inputs.py runs all of them as real processes): each is one
line on stderr, exit code 2, no traceback, and nothing written or changed."""

import hashlib
import json
import os
import shutil

import pytest

from jgen import cli
from jgen import config as config_lib
from jgen.eval import suite
from jgen.train import loop
from tests.helpers import config_path

VAE = config_path("configs/vae/conv_digits.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("trained") / "run")
  config = config_lib.load(VAE + ":smoke", ["train.steps=2", "train.ckpt_every=2", "train.eval_every=2"])
  loop.train(config, workdir, show_progress=False)
  return workdir


def _snapshot(*roots):
  out = {}
  for root in roots:
    for d, _, files in os.walk(root):
      for name in files:
        if name != ".jgen_train.lock":
          with open(os.path.join(d, name), "rb") as f:
            out[os.path.join(d, name)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _write(path, text):
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)


GOOD = ("from jgen.config_schema import experiment\n"
        "def get_config(arg='full'):\n"
        "  return experiment(model=dict(name='vae.conv'), data=dict(name='digits'), train=dict(steps=2))\n")

# (name, argv with {S} (scratch) and {T} (a copy of the trained run), files to write first {relpath: text})
CASES = [
    ("config path not .py", ["train", "{S}/cfg.txt", "--workdir", "{S}/w"], {"cfg.txt": GOOD}),
    ("get_config raises", ["train", "{S}/cfg.py", "--workdir", "{S}/w"],
     {"cfg.py": "def get_config(arg='full'):\n  raise RuntimeError('boom')\n"}),
    ("get_config takes no variant", ["train", "{S}/cfg.py:smoke", "--workdir", "{S}/w"],
     {"cfg.py": GOOD.replace("arg='full'", "")}),
    ("unknown optimizer", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "optim.name=adamz"], {}),
    ("unknown lr decay", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "optim.decay=wobbly"], {}),
    ("negative latent size", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "model.latent_dim=-2"], {}),
    ("zero channels", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "model.channels=(0, 8)"], {}),
    ("negative lr", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "optim.lr=-1"], {}),
    ("EMA decay above 1", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "optim.ema_decay=1.5"], {}),
    ("keep no checkpoint", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "train.keep=0"], {}),
    ("sample 10^12 images", ["sample", "--workdir", "{T}", "--out", "{S}/s.png", "--num", "1000000000000"], {}),
    ("sample --out a directory", ["sample", "--workdir", "{T}", "--out", "{S}/outdir"], {"outdir/keep": "x"}),
    ("sample --out without an image suffix", ["sample", "--workdir", "{T}", "--out", "{S}/samples"], {}),
    ("sample --kw the model does not take", ["sample", "--workdir", "{T}", "--out", "{S}/s.png", "--kw", "bogus=1"],
     {}),
    ("evaluate no metric", ["evaluate", "--workdir", "{T}", "--metrics", ","], {}),
    ("evaluate FID-FMNIST on 8x8 digits", ["evaluate", "--workdir", "{T}", "--metrics", "fid"], {}),
    ("evaluate over a foreign eval.json", ["evaluate", "--workdir", "{T}", "--metrics", "nll"],
     {"T/eval.json": "[1, 2]"}),
    ("results of a missing directory", ["results", "{S}/nothing", "--out", "{S}/RESULTS.md"],
     {"RESULTS.md": "earlier"}),
    ("results with no eval.json", ["results", "{S}/runs", "--out", "{S}/RESULTS.md"],
     {"RESULTS.md": "earlier", "runs/a/eval.json": "{oops"}),
    ("results --out a directory", ["results", "{T}", "--out", "{S}/outdir"], {"outdir/keep": "x"}),
]


@pytest.mark.parametrize("name,argv,files", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(name, argv, files, trained, tmp_path, capsys):
  scratch, run = str(tmp_path / "S"), str(tmp_path / "T")
  os.makedirs(scratch)
  shutil.copytree(trained, run)
  _write(os.path.join(run, "eval.json"), json.dumps({"step": 2, "metrics": {"nll": 1.0}}))
  for rel, text in files.items():
    _write(os.path.join(run, rel[2:]) if rel.startswith("T/") else os.path.join(scratch, rel), text)
  before = _snapshot(scratch, run)
  rc = cli.main([a.replace("{S}", scratch).replace("{T}", run) for a in argv])
  err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
  assert rc == 2 and len(err) == 1 and err[0].startswith("jgen: error:"), (rc, err)
  assert _snapshot(scratch, run) == before


def test_data_dir_that_is_a_file(tmp_path, monkeypatch, capsys):
  afile = tmp_path / "afile"
  afile.write_text("x")
  monkeypatch.setenv("JGEN_DATA_DIR", str(afile))
  assert cli.main(["train", VAE + ":smoke", "--workdir", str(tmp_path / "w")]) == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 1 and "JGEN_DATA_DIR" in err[0] and not (tmp_path / "w").exists()


def test_a_second_evaluation_of_the_same_step_keeps_the_first_ones_metrics(tmp_path):
  workdir = str(tmp_path)
  first = {"step": 7, "split": "test", "metrics": {"nll": 1.5}, "seconds": {"nll": 2.0}, "skipped": {}}
  suite.write_eval_json(first, workdir)
  earlier = suite._earlier_eval(workdir)
  suite.write_eval_json({"step": 7, "split": "test", "metrics": {"fid_fmnist": 30.0}, "seconds": {}, "skipped": {}},
                        workdir, earlier)
  with open(os.path.join(workdir, "eval.json")) as f:
    assert json.load(f)["metrics"] == {"nll": 1.5, "fid_fmnist": 30.0}
  suite.write_eval_json({"step": 9, "split": "test", "metrics": {"fid_fmnist": 20.0}, "seconds": {}, "skipped": {}},
                        workdir, suite._earlier_eval(workdir))
  with open(os.path.join(workdir, "eval.json")) as f:
    assert json.load(f)["metrics"] == {"fid_fmnist": 20.0}  # a newer checkpoint's evaluation replaces it
