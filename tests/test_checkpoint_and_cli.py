"""Checkpoint fallback, sampling and listing through the CLI entry points."""

import glob
import os

import jax
import numpy as np

from jgen import cli
from jgen import config as config_lib
from jgen.train import checkpoint, loop
from tests.helpers import config_path, logged

VAE = config_path("configs/vae/conv_digits.py") + ":smoke"


def _train(workdir, steps):
  config = config_lib.load(VAE, [f"train.steps={steps}", "train.ckpt_every=2", "train.log_every=1", "train.keep=5"])
  return loop.train(config, workdir, show_progress=False)


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  _train(workdir, 4)
  for path in glob.glob(os.path.join(workdir, "checkpoints", "4", "state", "**", "*"), recursive=True):
    if os.path.isfile(path):
      with open(path, "wb") as f:
        f.write(b"garbage")
  _train(workdir, 6)  # resumes from step 2, the newest readable checkpoint
  notes = capsys.readouterr().err.splitlines()
  assert len(notes) == 1 and "checkpoint at step 4 is damaged" in notes[0] and "using step 2" in notes[0]
  assert [s for s, _ in logged(workdir, "train/loss")] == [1, 2, 3, 4, 5, 6]
  config, family, state = checkpoint.restore_for_inference(workdir)
  assert int(state.step) == 6


def test_sample_and_list_commands(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  _train(workdir, 2)
  out = str(tmp_path / "grid.png")
  assert cli.main(["sample", "--workdir", workdir, "--num", "9", "--out", out]) == 0
  with open(out, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert cli.main(["sample", "--workdir", workdir, "--num", "4", "--out", out, "--kw", "label"]) == 2
  assert cli.main(["list"]) == 0
  table = capsys.readouterr().out
  assert "vae.conv" in table and "configs/vae/conv_digits.py" in table
  assert "gan.dcgan" in table and "implicit" in table


def test_samples_are_deterministic_given_the_key(tmp_path):
  workdir = str(tmp_path / "run")
  _train(workdir, 2)
  _, family, state = checkpoint.restore_for_inference(workdir)
  a = family.sample(state, jax.random.key(3), 4)
  b = family.sample(state, jax.random.key(3), 4)
  np.testing.assert_array_equal(a, b)
  assert a.shape == (4, 8, 8, 1) and float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_evaluate_writes_eval_json_and_results_table(tmp_path):
  import json

  runs = tmp_path / "runs"
  workdir = str(runs / "vae_digits")
  metrics = _train(workdir, 2)
  assert cli.main(["evaluate", "--workdir", workdir, "--metrics", "nll"]) == 0
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  nll = result["metrics"]["nll"]
  assert nll["kind"] == "lower_bound"
  # The loop's eval over the same test split and the evaluator agree on the scale of the bound.
  assert abs(nll["value"] - metrics["eval/nll"]) < 0.1 * metrics["eval/nll"]
  assert result["run"]["steps"] == 2
  out = str(tmp_path / "RESULTS.md")
  assert cli.main(["results", str(runs), "--out", out]) == 0
  with open(out) as f:
    assert "vae.conv" in f.read()
  assert cli.main(["evaluate", "--workdir", workdir, "--metrics", "bogus"]) == 2


def test_manager_keeps_the_newest_and_the_best(tmp_path):
  # Steps 1..6 with main metrics 3, 1, 2, -, 4, 5 and keep=2: the two newest stay, and so does
  # step 2 (lowest metric) for "min" runs; "max" runs rank step 6 best, already among the newest.
  for mode, kept, best in (("min", [2, 5, 6], 2), ("max", [5, 6], 6), (None, [5, 6], 6)):
    mngr = checkpoint.manager(str(tmp_path / str(mode)), keep=2, best_mode=mode)
    for step, value in zip(range(1, 7), (3.0, 1.0, 2.0, None, 4.0, 5.0)):
      checkpoint.save(mngr, step, {"w": np.full(2, step, np.float32)}, {"step": step},
                      config_lib.load(VAE), main_metric=value)
    mngr.wait_until_finished()
    assert mngr.all_steps() == kept, mode
    assert mngr.best_step() == best, mode


def test_best_checkpoint_is_the_lowest_eval_and_restores(tmp_path):
  workdir = str(tmp_path / "run")
  # At this learning rate the smoke VAE's eval bound is lowest at step 2 (43.1), then 45.4, 44.1:
  # the best checkpoint is not the newest, and keep=1 would have deleted it.
  config = config_lib.load(VAE, ["train.steps=6", "train.ckpt_every=2", "train.eval_every=2", "train.log_every=1",
                                 "train.keep=1", "optim.lr=0.03"])
  loop.train(config, workdir, show_progress=False)
  evals = dict(logged(workdir, "eval/nll"))
  best = min(evals, key=evals.get)
  assert best != 6, evals
  _, _, state = checkpoint.restore_for_inference(workdir, "best")
  assert int(state.step) == best
  _, _, state = checkpoint.restore_for_inference(workdir)
  assert int(state.step) == 6
  assert cli.main(["evaluate", "--workdir", workdir, "--metrics", "nll", "--checkpoint", "best"]) == 0
  import json
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  assert result["step"] == best and result["checkpoint"] == "best"
