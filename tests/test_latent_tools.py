"""`jgen latent`: the geometry is right (lerp, slerp, PCA), interpolation ends and strength 0 reproduce
decode(embed(x)), and each command writes its PNG and JSON or refuses in one line, on smoke runs."""

import json
import os

import jax
import matplotlib.image as mpimg
import numpy as np
import pytest

from jgen import cli
from jgen.data.classes import class_names, lookup, parse_pair
from jgen.errors import UserError
from jgen.eval import latent
from jgen.eval.suite import load_split
from jgen.train import checkpoint
from tests.helpers import config_path

RUNS = {  # name -> (config, overrides): smoke runs on the bundled digits or the 2-D moons, seconds each
    "vae": ("configs/vae/conv_digits.py:smoke", ()),
    "flow": ("configs/flow/realnvp_toy2d.py:smoke", ()),
    "ppca": ("configs/classical/ppca_fashion_mnist.py:smoke", ("data.name=digits",)),
    "gmm": ("configs/classical/gmm_fashion_mnist.py:smoke", ("data.name=digits",)),
    "gan": ("configs/gan/dcgan_fashion_mnist.py:smoke", ("data.name=digits", "train.evals=''")),
    "ae": ("configs/vae/ae_fashion_mnist.py:smoke", ("data.name=digits", "data.eval_batch_size=100")),
    "cvae": ("configs/vae/cvae_fashion_mnist.py:smoke", ("data.name=digits", "data.eval_batch_size=100")),
    "ebm": ("configs/ebm/langevin_toy2d.py:smoke", ()),
}


def trained_run(tmp_path_factory, name: str) -> str:
  """The workdir of smoke run `name`, trained once per test session (both test modules share it)."""
  workdir = os.path.join(str(tmp_path_factory.getbasetemp()), "latent_runs", name)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    config, sets = RUNS[name]
    args = ["train", config_path(config), "--workdir", workdir, "--quiet"]
    for s in sets:
      args += ["--set", s]
    assert cli.main(args) == 0
  return workdir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return lambda name: trained_run(tmp_path_factory, name)


def restored(workdir):
  return checkpoint.restore_for_inference(workdir)


def raw_reconstruction(family, state, x, labels=None):
  """decode(embed(x)) straight from the family's methods, without the tools' batching."""
  if family.latent_conditions:
    cond = {"label": np.asarray(labels, np.int32)}
    z = jax.jit(family.embed)(state, x, cond)
    return np.asarray(jax.jit(family.decode)(state, z, cond))
  return np.asarray(jax.jit(family.decode)(state, jax.jit(family.embed)(state, x)))


def one_line_error(capsys, argv, *needles):
  code = cli.main(argv)
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.strip()]
  assert code == 2 and len(lines) == 1 and lines[0].startswith("jgen: error: "), err
  assert "Traceback" not in err
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


# ---- geometry ------------------------------------------------------------------------------------------
def test_linear_interpolation_ends_and_midpoint():
  rng = np.random.default_rng(0)
  z0, z1 = rng.normal(size=16), rng.normal(size=16)
  path = latent.lerp(z0, z1, np.linspace(0, 1, 5))
  np.testing.assert_array_equal(path[0], z0)
  np.testing.assert_array_equal(path[-1], z1)
  np.testing.assert_allclose(path[2], (z0 + z1) / 2, rtol=1e-12)
  np.testing.assert_allclose(np.diff(path, axis=0), np.broadcast_to((z1 - z0) / 4, (4, 16)), atol=1e-12)


def test_slerp_ends_norms_and_degenerate_cases():
  rng = np.random.default_rng(1)
  z0, z1 = rng.normal(size=64), rng.normal(size=64)
  z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)  # equal norms: the great circle keeps them
  t = np.linspace(0, 1, 11)
  path = latent.slerp(z0, z1, t)
  np.testing.assert_array_equal(path[0], z0)
  np.testing.assert_array_equal(path[-1], z1)
  np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-10)
  assert np.linalg.norm(latent.lerp(z0, z1, t)[5]) < 0.8 * np.linalg.norm(z0)  # the chord dips inside
  e0, e1 = np.eye(3)[0], np.eye(3)[1]
  np.testing.assert_allclose(latent.slerp(e0, e1, [0.5])[0], (e0 + e1) / np.sqrt(2), atol=1e-12)
  # Orthogonal ends: the weights are sin((1 - t) pi / 2) and sin(t pi / 2), whatever the norms.
  t4 = np.linspace(0, 1, 4)
  np.testing.assert_allclose(latent.slerp(e0, 3 * e1, t4)[:, :2],
                             np.stack([np.sin((1 - t4) * np.pi / 2), 3 * np.sin(t4 * np.pi / 2)], 1), atol=1e-12)
  same = latent.slerp(z0, 2 * z0, t)  # parallel: no angle to walk, the straight line and no NaN
  np.testing.assert_allclose(same, latent.lerp(z0, 2 * z0, t), rtol=1e-12)


def test_pca_projection_matches_sklearn():
  from sklearn.decomposition import PCA

  rng = np.random.default_rng(2)
  z = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 3.0
  proj, components, mean, ratio = latent.pca(z)
  reference = PCA(2).fit(z)
  expected = reference.transform(z)
  signs = np.sign(np.sum(proj * expected, axis=0))  # a principal axis is defined up to its sign
  np.testing.assert_allclose(proj, expected * signs, atol=1e-9)
  np.testing.assert_allclose(ratio, reference.explained_variance_ratio_, rtol=1e-9)
  np.testing.assert_allclose(np.abs(components), np.abs(reference.components_), atol=1e-9)
  np.testing.assert_allclose(mean, z.mean(0))
  flat, _, _, ratio1 = latent.pca(z[:, :1])  # one dimension: the second axis is zero
  np.testing.assert_allclose(flat[:, 0] ** 2, (z[:, 0] - z[:, 0].mean()) ** 2)
  assert np.all(flat[:, 1] == 0) and ratio1[1] == 0 and ratio1[0] == pytest.approx(1.0)


def test_class_names_and_attribute_parsing():
  names = class_names("fashion_mnist", 10)
  assert names[7] == "Sneaker" and names[5] == "Sandal" and len(names) == 10
  assert parse_pair("sneaker-sandal", names) == (7, 5)
  assert parse_pair("SNEAKER-Sandal", names) == (7, 5)
  assert parse_pair("7-5", names) == (7, 5)
  assert parse_pair("t-shirt/top-ankle boot", names) == (0, 9)
  assert parse_pair("t-shirt-ankle_boot", names) == (0, 9)
  assert lookup("top", names) == 0 and lookup("dog", names) is None and lookup("-1", names) is None
  assert class_names("digits", 10) == tuple("0123456789")
  for bad, words in (("sneaker", "CLASS_A-CLASS_B"), ("dog-cat", "does not name two classes"),
                     ("sandal-5", "twice"), ("7-10", "does not name")):
    with pytest.raises(UserError, match=words):
      parse_pair(bad, names)


# ---- the computations on trained runs ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vae", "flow"])
def test_interpolation_ends_reconstruct_the_endpoints(runs, name):
  config, family, state = restored(runs(name))
  x, labels = load_split(config.data.name, "test", 40)
  i, j = 3, 17
  codec = latent.Codec(family, state)
  r = latent.interpolate(codec, x[[i, j]], labels[[i, j]], steps=7)
  for end, k in ((0, i), (-1, j)):  # decode(embed(x)) of the tools' fixed-size batches: equal arrays
    np.testing.assert_array_equal(r["decoded"][end], codec.decode(codec.embed(x[k:k + 1]))[0])
    # ... and the family's own methods on a batch of one (XLA may round another batch size differently)
    np.testing.assert_allclose(r["decoded"][end], raw_reconstruction(family, state, x[k:k + 1])[0], atol=1e-6)
  np.testing.assert_array_equal(r["decoded"][[0, -1]], r["reconstructions"])
  np.testing.assert_allclose(r["latents"][3], r["endpoints"].mean(0), rtol=1e-6, atol=1e-7)
  if name == "flow":  # an exact inverse: the ends are the data themselves
    np.testing.assert_allclose(r["decoded"][[0, -1]], x[[i, j]], atol=1e-4)
    assert max(r["reconstruction_mse"]) < 1e-8
  spherical = latent.interpolate(latent.Codec(family, state), x[[i, j]], labels[[i, j]], steps=7, spherical=True)
  np.testing.assert_array_equal(spherical["decoded"][[0, -1]], r["decoded"][[0, -1]])


def test_arithmetic_at_strength_zero_is_the_reconstruction(runs):
  config, family, state = restored(runs("vae"))
  x, labels = load_split(config.data.name, "test", 300)
  r = latent.arithmetic(latent.Codec(family, state), x, labels, 7, 5, (0.0, 0.5, 1.0), num=4)
  assert np.all(labels[r["rows"]] == 5) and r["decoded"].shape == (4, 3) + x.shape[1:]
  codec = latent.Codec(family, state)
  np.testing.assert_array_equal(r["decoded"][:, 0], codec.decode(codec.embed(x[r["rows"]])))
  np.testing.assert_allclose(r["decoded"][:, 0], raw_reconstruction(family, state, x[r["rows"]]), atol=1e-6)
  z = np.asarray(jax.jit(family.embed)(state, x), np.float64)
  mean_a = z[labels == 7].mean(0)
  expected_end = np.asarray(jax.jit(family.decode)(state, mean_a[None].astype(np.float32)))[0]
  np.testing.assert_allclose(r["morph"][-1], expected_end, atol=1e-5)  # s = 1 from the mean of B: the mean of A


def test_conditional_family_decodes_under_labels(runs):
  config, family, state = restored(runs("cvae"))
  assert family.latent_conditions == ("label",)
  x, labels = load_split(config.data.name, "test", 300)
  codec = latent.Codec(family, state)
  r = latent.arithmetic(codec, x, labels, 7, 5, (0.0,), num=3)
  assert r["decoded"].shape == (3, 10) + x.shape[1:]
  own = raw_reconstruction(family, state, x[r["rows"]], labels[r["rows"]])
  np.testing.assert_allclose(r["decoded"][:, 5], own, atol=1e-6)  # its own label: the reconstruction
  assert not np.allclose(r["decoded"][:, 5], r["decoded"][:, 7])
  i, j = int(np.flatnonzero(labels == 1)[0]), int(np.flatnonzero(labels == 2)[0])
  walk = latent.interpolate(codec, x[[i, j]], labels[[i, j]], steps=5)
  assert walk["decode_label"] == 1
  np.testing.assert_allclose(walk["decoded"][0], walk["reconstructions"][0], atol=1e-6)


# ---- the command end to end ------------------------------------------------------------------------------
def test_latent_commands_write_pngs_and_json(runs, tmp_path, capsys):
  vae = runs("vae")
  out = str(tmp_path / "map.png")
  assert cli.main(["latent", "map", "--workdir", vae, "--out", out, "--num-examples", "200"]) == 0
  record = json.load(open(tmp_path / "map.json"))
  assert record["projection"]["kind"] == "none" and record["n"] == 200 and record["step"] == 60
  assert record["grid"]["kind"] == "decoded latent plane" and os.path.exists(tmp_path / "map_grid.png")
  assert min(mpimg.imread(out).shape[:2]) > 100

  out = str(tmp_path / "walk.png")
  assert cli.main(["latent", "interpolate", "--workdir", vae, "--from", "3", "--to", "17", "--steps", "6",
                   "--spherical", "--out", out]) == 0
  record = json.load(open(tmp_path / "walk.json"))
  assert record["indices"] == [3, 17] and record["mode"] == "spherical" and len(record["t"]) == 6
  assert len(record["reconstruction_mse"]) == 2 and mpimg.imread(out).shape[1] > 100

  out = str(tmp_path / "arith.png")
  assert cli.main(["latent", "arithmetic", "--workdir", vae, "--attribute", "7-5", "--num", "3",
                   "--strengths", "0,1,2", "--out", out]) == 0
  record = json.load(open(tmp_path / "arith.json"))
  assert record["strengths"] == [0.0, 1.0, 2.0] and record["attribute"]["a"]["label"] == 7
  assert len(record["indices"]) == 3 and os.path.exists(out)
  assert "wrote" in capsys.readouterr().out


def test_map_of_a_wide_latent_reports_its_pca(runs, tmp_path):
  workdir = runs("ppca")
  out = str(tmp_path / "ppca.png")
  assert cli.main(["latent", "map", "--workdir", workdir, "--out", out, "--num-examples", "250"]) == 0
  record = json.load(open(tmp_path / "ppca.json"))
  assert record["projection"]["kind"] == "pca" and record["latent_dim"] == 8
  assert not os.path.exists(tmp_path / "ppca_grid.png")  # 8-D: no plane to decode
  config, family, state = restored(workdir)
  x, _ = load_split(config.data.name, "test", 250)
  from sklearn.decomposition import PCA

  expected = PCA(2).fit(np.asarray(jax.jit(family.embed)(state, x), np.float64)).explained_variance_ratio_
  np.testing.assert_allclose(record["projection"]["explained_variance_ratio"], expected, rtol=1e-4)


def test_points_flow_and_discrete_mixture_maps(runs, tmp_path):
  out = str(tmp_path / "flow.png")
  assert cli.main(["latent", "map", "--workdir", runs("flow"), "--out", out, "--num-examples", "500"]) == 0
  assert os.path.exists(tmp_path / "flow_grid.png")  # 2-D latent: the decoded plane, as a mesh over the data
  assert cli.main(["latent", "interpolate", "--workdir", runs("flow"), "--from", "0", "--to", "9",
                   "--out", str(tmp_path / "flow_walk.png")]) == 0
  out = str(tmp_path / "gmm.png")
  assert cli.main(["latent", "map", "--workdir", runs("gmm"), "--out", out, "--num-examples", "300"]) == 0
  record = json.load(open(tmp_path / "gmm.json"))
  assert record["projection"]["of"] == "responsibilities" and record["grid"]["kind"] == "component means"
  assert record["grid"]["shape"] == [1, 4] and os.path.exists(tmp_path / "gmm_grid.png")


def test_gan_interpolates_between_seeds(runs, tmp_path, capsys):
  gan = runs("gan")
  out = str(tmp_path / "gan.png")
  assert cli.main(["latent", "interpolate", "--workdir", gan, "--from", "1", "--to", "2", "--spherical",
                   "--out", out]) == 0
  record = json.load(open(tmp_path / "gan.json"))
  assert record["seeds"] == [1, 2] and "prior draws" in record["endpoints"]
  _, family, state = restored(gan)
  z = latent.seed_latents(family.config.model.latent_dim, [1, 2])
  np.testing.assert_allclose(record["latent_norms"][0], np.linalg.norm(z[0]), rtol=1e-6)
  for action in (["map"], ["arithmetic", "--attribute", "1-0"]):
    path = str(tmp_path / f"{action[0]}.png")
    one_line_error(capsys, ["latent", *action, "--workdir", gan, "--out", path], "only decodes")
    assert not os.path.exists(path)


def test_autoencoder_and_conditional_vae(runs, tmp_path, capsys):
  ae = runs("ae")
  assert cli.main(["latent", "map", "--workdir", ae, "--out", str(tmp_path / "ae.png"), "--num-examples", "100"]) == 0
  assert json.load(open(tmp_path / "ae.json"))["projection"]["kind"] == "pca"
  one_line_error(capsys, ["latent", "interpolate", "--workdir", ae, "--from", "0", "--to", "1", "--spherical",
                          "--out", str(tmp_path / "ae_s.png")], "--spherical", "N(0, I)")
  cvae = runs("cvae")
  assert cli.main(["latent", "interpolate", "--workdir", cvae, "--from", "0", "--to", "1",
                   "--out", str(tmp_path / "c.png")]) == 0
  record = json.load(open(tmp_path / "c.json"))
  assert record["decode_label"] == record["labels"][0]
  assert cli.main(["latent", "arithmetic", "--workdir", cvae, "--attribute", "7-5", "--num", "2",
                   "--out", str(tmp_path / "ca.png")]) == 0
  assert json.load(open(tmp_path / "ca.json"))["labels"] == list(range(10))
  one_line_error(capsys, ["latent", "arithmetic", "--workdir", cvae, "--attribute", "7-5", "--strengths", "0,1",
                          "--out", str(tmp_path / "cb.png")], "--strengths")


def test_refusals_are_one_line_and_write_nothing(runs, tmp_path, capsys):
  vae, gmm = runs("vae"), runs("gmm")
  out = str(tmp_path / "x.png")
  cases = [
      (["interpolate", "--workdir", gmm, "--from", "0", "--to", "1"], "discrete latent"),
      (["arithmetic", "--workdir", gmm, "--attribute", "1-0"], "discrete latent"),
      (["arithmetic", "--workdir", vae, "--attribute", "sneaker-sandal"], "does not name two classes"),
      (["arithmetic", "--workdir", vae, "--attribute", "75"], "CLASS_A-CLASS_B"),
      (["arithmetic", "--workdir", vae, "--attribute", "7-5", "--strengths", "0,x"], "comma-separated"),
      (["interpolate", "--workdir", vae, "--from", "0", "--to", "300"], "has 300 examples"),
      (["interpolate", "--workdir", vae, "--from", "0", "--to", "1", "--steps", "1"], "--steps"),
      (["map", "--workdir", str(tmp_path / "nothing")], "does not exist"),
  ]
  for args, needle in cases:
    one_line_error(capsys, ["latent", *args, "--out", out], needle)
  one_line_error(capsys, ["latent", "map", "--workdir", vae, "--out", str(tmp_path)], "is a directory")
  one_line_error(capsys, ["latent", "map", "--workdir", vae, "--out", str(tmp_path / "m.txt")], ".png")
  assert os.listdir(tmp_path) == []
