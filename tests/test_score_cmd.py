"""`jgen score`: scores are the family's log p (or bound, IWAE estimate) on the named inputs, the AUROC is
right, outliers separate, and bad inputs are one line with nothing written."""

import json
import os

import jax
import numpy as np
import pytest

from jgen import cli
from jgen.eval import likelihood, ood
from jgen.eval.suite import load_split
from jgen.train import checkpoint
from tests.test_latent_tools import one_line_error, trained_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return lambda name: trained_run(tmp_path_factory, name)


def score(tmp_path, workdir, *args, out="scores.npy"):
  path = str(tmp_path / out)
  assert cli.main(["score", "--workdir", workdir, "--out", path, *args]) == 0
  with open(os.path.splitext(path)[0] + ".json") as f:
    return np.load(path), json.load(f)


def test_auroc_of_a_hand_example():
  # Pairs (inlier, outlier): 3 > 1, 3 > 2, 2 > 1 and a tie 2 = 2 counted half: 3.5 of 4.
  assert ood.auroc([3.0, 2.0], [1.0, 2.0]) == 0.875
  assert ood.auroc([5, 6, 7], [1, 2]) == 1.0 and ood.auroc([1, 2], [5, 6, 7]) == 0.0
  assert ood.auroc([1, 1], [1, 1, 1]) == 0.5
  assert ood.score_kind(type("F", (), {"likelihood": "lower_bound"})()) == "log p (lower bound)"


def test_flow_scores_are_its_exact_log_prob(runs, tmp_path, capsys):
  workdir = runs("flow")
  config, family, state = checkpoint.restore_for_inference(workdir)
  x, _ = load_split(config.data.name, "test", 700)
  np.save(tmp_path / "points.npy", x)
  s, record = score(tmp_path, workdir, "--data", str(tmp_path / "points.npy"))
  # Points are modelled as given: log p needs no noise, any key gives it.
  expected = np.asarray(jax.jit(family.log_prob)(state, x, jax.random.key(123)))
  assert s.dtype == np.float64 and s.shape == (700,)
  np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-5)
  assert record["score"] == "log p (exact)" and record["n"] == 700
  assert record["mean"] == pytest.approx(float(expected.mean()), rel=1e-5)
  named, _ = score(tmp_path, workdir, "--data", "toy2d_moons", "--num-examples", "700", out="named.npy")
  np.testing.assert_array_equal(named, s)
  _, record = score(tmp_path, workdir, "--data", "toy2d_moons", "--against", "noise", out="noise.npy")
  assert record["against"]["auroc"] > 0.6 and record["against"]["outlier_set"] == "noise"  # 20 steps of training
  assert "AUROC" in capsys.readouterr().out


def test_ppca_scores_equal_log_prob_and_noise_separates(runs, tmp_path):
  workdir = runs("ppca")
  config, family, state = checkpoint.restore_for_inference(workdir)
  n = int(config.data.eval_batch_size)  # one batch: its dequantization key is fold_in(key(seed), 0)
  x, _ = load_split("digits", "test", n)
  s, record = score(tmp_path, workdir, "--data", "digits", "--num-examples", str(n), "--seed", "3",
                    "--against", "noise")
  expected = np.asarray(jax.jit(family.log_prob)(state, x, jax.random.fold_in(jax.random.key(3), 0)))
  np.testing.assert_allclose(s, expected, rtol=1e-6, atol=1e-4)
  assert record["score"] == "log p (exact)" and record["data"] == {"dataset": "digits", "split": "test", "n": n}
  assert record["against"]["auroc"] > 0.99 and record["against"]["mean"] < record["mean"]
  assert record["against"]["n"] == n and record["step"] == 3
  # uint8 pixels read as the loader reads them; the same seed gives the same numbers
  np.save(tmp_path / "digits.npy", np.round(x * 255).astype(np.uint8))
  again, _ = score(tmp_path, workdir, "--data", str(tmp_path / "digits.npy"), "--seed", "3", out="again.npy")
  np.testing.assert_array_equal(again, s)
  other, _ = score(tmp_path, workdir, "--data", str(tmp_path / "digits.npy"), "--seed", "4", out="other.npy")
  assert not np.array_equal(other, s)  # dequantization noise follows the seed


def test_gmm_tells_digits_from_noise_and_inverted(runs, tmp_path):
  _, record = score(tmp_path, runs("gmm"), "--data", "digits", "--against", "inverted")
  assert record["against"]["auroc"] > 0.9 and record["n"] == 300
  _, record = score(tmp_path, runs("gmm"), "--data", "digits", "--against", "noise", out="n.npy")
  assert record["against"]["auroc"] > 0.99


def test_vae_scores_the_fixed_binarization_and_iwae(runs, tmp_path):
  workdir = runs("vae")
  config, family, state = checkpoint.restore_for_inference(workdir)
  x, _ = load_split("digits", "test")
  s, record = score(tmp_path, workdir, "--data", "digits")
  assert record["score"] == "log p (lower bound)" and "binarization" in record["convention"]
  assert len(x) == int(config.data.eval_batch_size)  # one batch of 300: key fold_in(key(0), 0)
  key = jax.random.fold_in(jax.random.key(0), 0)
  expected = jax.jit(family.log_prob)(state, np.asarray(likelihood.binarize(x)), key)
  np.testing.assert_allclose(s, np.asarray(expected), rtol=1e-5, atol=1e-3)
  iw, record = score(tmp_path, workdir, "--data", "digits", "--iwae", "20", out="iw.npy")
  assert record["score"] == "log p (IWAE, K=20)"
  assert iw.mean() > s.mean()  # the importance-weighted estimate is the tighter bound


def test_ebm_scores_are_its_negative_energy(runs, tmp_path, capsys):
  workdir = runs("ebm")
  config, family, state = checkpoint.restore_for_inference(workdir)
  x, _ = load_split(config.data.name, "test", 300)
  s, record = score(tmp_path, workdir, "--data", config.data.name, "--num-examples", "300")
  np.testing.assert_allclose(s, -np.asarray(jax.jit(family.energy)(state, x)), rtol=1e-5, atol=1e-5)
  assert record["score"] == "-energy (unnormalised)" and record["unit"].startswith("unnormalised")
  one_line_error(capsys, ["score", "--workdir", workdir, "--data", config.data.name, "--iwae", "5",
                          "--out", str(tmp_path / "iw.npy")], "importance weights")
  assert not os.path.exists(tmp_path / "iw.npy")


def test_bad_inputs_are_one_line_and_write_nothing(runs, tmp_path, capsys):
  ppca, gan = runs("ppca"), runs("gan")
  files = tmp_path / "inputs"
  files.mkdir()
  np.save(files / "wrong_shape.npy", np.zeros((5, 10, 10), np.float32))
  np.save(files / "out_of_range.npy", np.full((5, 8, 8, 1), 2.0, np.float32))
  np.save(files / "ints.npy", np.zeros((5, 8, 8, 1), np.int64))
  out = tmp_path / "out"
  out.mkdir()
  target = str(out / "s.npy")
  cases = [
      (ppca, ["--data", str(files / "wrong_shape.npy")], "shape [5, 10, 10]"),
      (ppca, ["--data", str(files / "out_of_range.npy")], "[0, 1]"),
      (ppca, ["--data", str(files / "ints.npy")], "int64"),
      (ppca, ["--data", str(files / "missing.npy")], "does not exist"),
      (ppca, ["--data", "no_such_set"], "give a dataset name"),
      (ppca, ["--data", "fashion_mnist"], "28x28x1"),
      (ppca, ["--data", "digits", "--against", str(files / "wrong_shape.npy")], "shape"),
      (ppca, ["--data", "digits", "--iwae", "10"], "importance weights"),
      (gan, ["--data", "digits"], "neither a likelihood nor a score"),
  ]
  for workdir, args, needle in cases:
    one_line_error(capsys, ["score", "--workdir", workdir, "--out", target, *args], needle)
  one_line_error(capsys, ["score", "--workdir", ppca, "--data", "digits", "--out", str(out / "s.txt")], ".npy")
  assert os.listdir(out) == []
