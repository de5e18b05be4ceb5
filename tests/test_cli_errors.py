"""Bad input: one line on stderr, exit code 2, no traceback, nothing in an existing workdir changed."""

import hashlib
import os
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, config_path, run_cli

VAE = config_path("configs/vae/conv_digits.py") + ":smoke"


def _snapshot(root):
  """Path -> content hash of every file under root."""
  out = {}
  for dirpath, _, files in os.walk(root):
    for name in files:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        out[path] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("existing") / "run")
  result = run_cli("train", VAE, "--workdir", workdir, "--quiet", "--set", "train.steps=4", "--set", "train.ckpt_every=2")
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def _assert_one_line_error(result, *needles):
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, result.stderr
  assert "Traceback" not in result.stderr
  assert lines[0].startswith("jgen: error: ")
  for needle in needles:
    assert needle in lines[0], lines[0]


CASES = {
    "missing config file": (["train", "configs/vae/no_such_config.py:smoke"], ("not found",)),
    "unknown --set key": (["train", VAE, "--set", "optim.learning_rate=0.1"], ("optim.learning_rate", "optim.lr")),
    "wrong type": (["train", VAE, "--set", "train.steps=many"], ("train.steps", "int")),
    "malformed --set": (["train", VAE, "--set", "optim.lr"], ("key=value",)),
    "unknown variant": (["train", config_path("configs/vae/conv_digits.py") + ":huge"], ("huge",)),
    "different config on the workdir": (["train", VAE, "--set", "model.latent_dim=3"], ("different config", "model")),
    "malformed train.evals": (["train", VAE, "--set", "train.evals=fid"], ("train.evals", "fid:2000")),
    "FID of 8x8 digits": (["train", VAE, "--set", "train.evals=fid:100"], ("28x28x1", "train.evals=''")),
    "zero batches per step": (["train", VAE, "--set", "train.batches_per_step=0"], ("batches_per_step",)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_on_existing_workdir(case, trained_workdir):
  args, needles = CASES[case]
  before = _snapshot(trained_workdir)
  result = run_cli(*args, "--workdir", trained_workdir)
  _assert_one_line_error(result, *needles)
  assert _snapshot(trained_workdir) == before


def test_sampling_conditions_the_model_does_not_take(trained_workdir, tmp_path):
  before = _snapshot(trained_workdir)
  result = run_cli("sample", "--workdir", trained_workdir, "--out", str(tmp_path / "s.png"), "--kw", "label=3")
  _assert_one_line_error(result, "label", "takes no such condition")
  assert not (tmp_path / "s.png").exists() and _snapshot(trained_workdir) == before


def test_validation_split_larger_than_train(tmp_path):
  workdir = tmp_path / "run"
  result = run_cli("train", VAE, "--workdir", str(workdir), "--set", "data.validation_size=5000")
  _assert_one_line_error(result, "validation")
  assert not workdir.exists()


def test_a_second_train_on_a_busy_workdir_is_refused_and_a_killed_run_frees_it(tmp_path):
  workdir = tmp_path / "run"
  endless = ["--set", "train.steps=1000000", "--set", "train.log_every=100000", "--set", "train.eval_every=0",
             "--set", "train.ckpt_every=0"]
  first = subprocess.Popen([sys.executable, "-m", "jgen", "train", VAE, "--workdir", str(workdir), "--quiet", *endless],
                           cwd=REPO, env={**os.environ, "XLA_FLAGS": ""}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 180
    while not (workdir / "config.json").exists():
      assert time.time() < deadline and first.poll() is None, "the first run did not start"
      time.sleep(0.5)
    result = run_cli("train", VAE, "--workdir", str(workdir), *endless)
    _assert_one_line_error(result, "in use by another `jgen train`", "pid")
  finally:
    first.kill()
    first.wait()
  # kill -9 releases the lock with the process: the same workdir trains again.
  result = run_cli("train", VAE, "--workdir", str(workdir), "--quiet", "--set", "train.steps=2",
                   "--set", "train.ckpt_every=0")
  assert result.returncode == 0, result.stderr[-2000:]


def test_missing_dataset(tmp_path):
  workdir = tmp_path / "run"
  result = run_cli("train", config_path("configs/vae/conv_fashion_mnist.py") + ":smoke", "--workdir", str(workdir),
                   "--set", f"data.source_dir={tmp_path / 'nowhere'}", env={"JGEN_DATA_DIR": str(tmp_path / "data")})
  _assert_one_line_error(result, "apt-get install -y dataset-fashion-mnist")
  assert not workdir.exists()


def test_data_prepare_missing_source(tmp_path):
  result = run_cli("data", "prepare", "fashion_mnist", "--source", str(tmp_path / "nowhere"),
                   env={"JGEN_DATA_DIR": str(tmp_path / "data")})
  _assert_one_line_error(result, "apt-get")


def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("keep me")
  result = run_cli("train", VAE, "--workdir", str(path))
  _assert_one_line_error(result, "not a directory")
  assert path.read_text() == "keep me"


def test_unreadable_workdir_for_sampling(tmp_path):
  result = run_cli("sample", "--workdir", str(tmp_path / "missing"), "--out", str(tmp_path / "s.png"))
  _assert_one_line_error(result, "does not exist")
  assert not (tmp_path / "s.png").exists()


def test_foreign_nonempty_workdir_is_left_alone(tmp_path):
  (tmp_path / "thesis.tex").write_text("precious")
  before = _snapshot(tmp_path)
  result = run_cli("train", VAE, "--workdir", str(tmp_path))
  _assert_one_line_error(result, "not empty")
  assert _snapshot(tmp_path) == before


def test_unknown_command_is_one_line():
  result = run_cli("trian")
  _assert_one_line_error(result)
