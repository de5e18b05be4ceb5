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
DDPM = config_path("configs/diffusion/ddpm_toy2d.py")
PIXELCNN = config_path("configs/autoregressive/pixelcnn_fashion_mnist.py")
GATED = config_path("configs/autoregressive/gated_pixelcnn_fashion_mnist.py")
UNET = config_path("configs/diffusion/ddpm_fashion_mnist.py")
TWO_STEPS = ["train.steps=2", "train.ckpt_every=2", "train.eval_every=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("trained") / "run")
  loop.train(config_lib.load(VAE + ":smoke", TWO_STEPS), workdir, show_progress=False)
  return workdir


@pytest.fixture(scope="module")
def trained_ddpm(tmp_path_factory):
  """A label-conditional DDPM on 2-D moons: it takes conditions (label, guidance) and sampler options."""
  workdir = str(tmp_path_factory.mktemp("trained_ddpm") / "run")
  config = config_lib.load(DDPM + ":smoke", TWO_STEPS + ["model.label_conditional=True", "model.bound_timesteps=4",
                                                          "model.log_prob_timesteps=4", "train.sample_num=4"])
  loop.train(config, workdir, show_progress=False)
  return workdir


def _snapshot(*roots):
  out = {}
  for root in roots:
    for d, dirs, files in os.walk(root):
      out.update({os.path.join(d, name): "dir" for name in dirs})
      for name in files:
        if name != ".jgen_train.lock":
          with open(os.path.join(d, name), "rb") as f:
            out[os.path.join(d, name)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _write(path, text):
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)


# A results table as `jgen results` writes it (one it may replace).
TABLE = "# jgen results\n\nGenerated from each run's eval.json by `jgen results`; do not edit by hand.\n"

GOOD = ("from jgen.config_schema import experiment\n"
        "def get_config(arg='full'):\n"
        "  return experiment(model=dict(name='vae.conv'), data=dict(name='digits'), train=dict(steps=2))\n")

# (name, argv with {S} (scratch), {T} (a copy of the trained VAE run) and {D} (a copy of the trained DDPM run),
#  files to write first {relpath: text}, under S, or under T with a "T/" prefix)
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
     {"RESULTS.md": TABLE}),
    ("results with no eval.json", ["results", "{S}/runs", "--out", "{S}/RESULTS.md"],
     {"RESULTS.md": TABLE, "runs/a/eval.json": "{oops"}),
    ("results --out a directory", ["results", "{T}", "--out", "{S}/outdir"], {"outdir/keep": "x"}),
    # Found by trying the CLI as a hostile user (each a traceback, or accepted, before it was checked).
    ("seed out of numpy's range", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "train.seed=-1"], {}),
    ("cosine decay over no steps", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "optim.decay=cosine"],
     {}),
    ("no evaluation batches", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "train.eval_batches=0"], {}),
    ("empty channel list", ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "model.channels=()"], {}),
    ("--set model.name to a model with other fields",
     ["train", VAE + ":smoke", "--workdir", "{S}/w", "--set", "model.name=ppca"], {}),
    ("PixelCNN with 1 feature", ["train", PIXELCNN + ":smoke", "--workdir", "{S}/w", "--set", "model.features=1"],
     {}),
    ("PixelCNN temperature 0", ["train", PIXELCNN + ":smoke", "--workdir", "{S}/w", "--set", "model.temperature=0"],
     {}),
    ("gated PixelCNN even kernel", ["train", GATED + ":smoke", "--workdir", "{S}/w", "--set", "model.kernel=2"], {}),
    ("U-Net attention at a missing level",
     ["train", UNET + ":smoke", "--workdir", "{S}/w", "--set", "model.attention_levels=(7,)"], {}),
    ("U-Net heads that do not divide channels",
     ["train", UNET + ":smoke", "--workdir", "{S}/w", "--set", "model.num_heads=3"], {}),
    ("linear schedule with 10 steps", ["train", DDPM + ":smoke", "--workdir", "{S}/w", "--set", "model.num_steps=10"],
     {}),
    ("more DDIM steps than diffusion steps",
     ["train", DDPM + ":smoke", "--workdir", "{S}/w", "--set", "model.sample_steps=5000"], {}),
    ("sample --seed -1", ["sample", "--workdir", "{T}", "--out", "{S}/s.png", "--seed", "-1"], {}),
    ("sample --seed 2^80", ["sample", "--workdir", "{T}", "--out", "{S}/s.png", "--seed", str(2**80)], {}),
    ("sample --kw eta=-1", ["sample", "--workdir", "{D}", "--out", "{S}/s.png", "--kw", "eta=-1"], {}),
    ("sample --kw sampler=bogus", ["sample", "--workdir", "{D}", "--out", "{S}/s.png", "--kw", "sampler=bogus"], {}),
    ("sample --kw steps beyond the schedule", ["sample", "--workdir", "{D}", "--out", "{S}/s.png", "--kw",
                                               "steps=5000"], {}),
    ("sample --kw guidance=-5", ["sample", "--workdir", "{D}", "--out", "{S}/s.png", "--kw", "guidance=-5"], {}),
    ("sample --kw bogus on a conditional DDPM", ["sample", "--workdir", "{D}", "--out", "{S}/s.png", "--kw",
                                                 "bogus=1"], {}),
    ("results over a handwritten file", ["results", "{T}", "--out", "{S}/README.md"], {"README.md": "my notes"}),
    ("config whose model block is a number", ["train", "{S}/cfg.py", "--workdir", "{S}/w"],
     {"cfg.py": GOOD.replace("model=dict(name='vae.conv')", "model=3")}),
    ("get_config calls sys.exit", ["train", "{S}/cfg.py", "--workdir", "{S}/w"],
     {"cfg.py": "import sys\ndef get_config(arg='full'):\n  sys.exit(3)\n"}),
    ("train --workdir ''", ["train", VAE + ":smoke", "--workdir", ""], {}),
    ("results of an eval.json in another shape", ["results", "{S}/runs", "--out", "{S}/RESULTS.md"],
     {"runs/a/eval.json": '{"metrics": {"nll": 1.0}}'}),
    ("evaluate over an eval.json whose skipped is a list", ["evaluate", "--workdir", "{T}", "--metrics", "nll"],
     {"T/eval.json": '{"step": 2, "split": "test", "metrics": {}, "skipped": [1]}'}),
    ("data list with a name", ["data", "list", "digits"], {}),
    ("data prepare --source for a dataset without files", ["data", "prepare", "digits", "--source", "{S}"], {}),
]


@pytest.mark.parametrize("name,argv,files", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(name, argv, files, trained, trained_ddpm, tmp_path, capsys):
  scratch, run, ddpm = str(tmp_path / "S"), str(tmp_path / "T"), str(tmp_path / "D")
  os.makedirs(scratch)
  shutil.copytree(trained, run)
  _write(os.path.join(run, "eval.json"), json.dumps({"step": 2, "metrics": {"nll": 1.0}}))
  if any("{D}" in a for a in argv):
    shutil.copytree(trained_ddpm, ddpm)
  for rel, text in files.items():
    _write(os.path.join(run, rel[2:]) if rel.startswith("T/") else os.path.join(scratch, rel), text)
  before = _snapshot(scratch, run, ddpm)
  rc = cli.main([a.replace("{S}", scratch).replace("{T}", run).replace("{D}", ddpm) for a in argv])
  _assert_one_line(rc, capsys)
  assert _snapshot(scratch, run, ddpm) == before


def _assert_one_line(rc, capsys):
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.strip()]
  assert rc == 2 and len(lines) == 1 and lines[0].startswith("jgen: error:") and "Traceback" not in err, (rc, lines)
  return lines[0]


def _unwritable(monkeypatch, *paths):
  """os.access says `paths` cannot be written (chmod does not stop root, who may run the tests)."""
  real, denied = os.access, {os.path.abspath(p) for p in paths}
  monkeypatch.setattr(os, "access", lambda p, mode, **kw: (not mode & os.W_OK or os.path.abspath(p) not in denied)
                      and real(p, mode, **kw))


def test_sample_into_a_read_only_directory(trained, tmp_path, monkeypatch, capsys):
  _unwritable(monkeypatch, tmp_path / "ro")
  (tmp_path / "ro").mkdir()
  rc = cli.main(["sample", "--workdir", trained, "--out", str(tmp_path / "ro" / "s.png")])
  assert "not writable" in _assert_one_line(rc, capsys) and not os.listdir(tmp_path / "ro")


def test_sample_over_a_read_only_file(trained, tmp_path, monkeypatch, capsys):
  out = tmp_path / "s.png"
  out.write_bytes(b"earlier")
  _unwritable(monkeypatch, out)
  rc = cli.main(["sample", "--workdir", trained, "--out", str(out)])
  assert "read-only" in _assert_one_line(rc, capsys) and out.read_bytes() == b"earlier"


def test_evaluate_a_read_only_workdir_refuses_before_computing(trained, tmp_path, monkeypatch, capsys):
  run = str(tmp_path / "T")
  shutil.copytree(trained, run)
  _unwritable(monkeypatch, run)
  monkeypatch.setattr(suite, "evaluate", lambda *a, **k: pytest.fail("evaluated a run it cannot write"))
  rc = cli.main(["evaluate", "--workdir", run, "--metrics", "nll"])
  assert "not writable" in _assert_one_line(rc, capsys) and not os.path.exists(os.path.join(run, "eval.json"))


def test_good_sampler_options_still_sample(trained_ddpm, tmp_path, capsys):
  out = str(tmp_path / "s.png")
  assert cli.main(["sample", "--workdir", trained_ddpm, "--out", out, "--num", "4", "--kw", "steps=5",
                   "--kw", "eta=0.5", "--kw", "label=1", "--kw", "guidance=2"]) == 0
  assert os.path.getsize(out) > 0


def test_data_dir_under_a_file(tmp_path, monkeypatch, capsys):
  (tmp_path / "afile").write_text("x")
  monkeypatch.setenv("JGEN_DATA_DIR", str(tmp_path / "afile" / "tfds"))
  rc = cli.main(["train", VAE + ":smoke", "--workdir", str(tmp_path / "w")])
  assert "JGEN_DATA_DIR" in _assert_one_line(rc, capsys) and not (tmp_path / "w").exists()


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
