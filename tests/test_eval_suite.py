"""suite.evaluate on toy families with known answers, and the RESULTS.md table from eval.json files."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen.data.spec import DataSpec
from jgen.eval import frechet, precision_recall, results, suite
from jgen.family import Family
from jgen.train.state import TrainState


IMAGES = DataSpec(kind="image", shape=(28, 28, 1), dtype="uint8", num_classes=10, likelihood_space="continuous_unit")
POINTS = DataSpec(kind="points", shape=(2,), dtype="float32")


class UniformImages(Family):
  """Pixels i.i.d. uniform on [0, 1]: log p = 0 for every dequantized image, so 8 bits/dim exactly."""

  family, branch = "VAE", "explicit, approximate"
  likelihood = "exact"

  def init(self, rng, batch):
    return TrainState.create({"model": {"w": jnp.zeros(3)}}).replace(step=jnp.array(7, jnp.int32))

  def sample(self, state, rng, n, cond=None):
    return jax.random.uniform(rng, (n, 28, 28, 1))

  def log_density(self, state, x, rng):
    return jnp.zeros(x.shape[0]) + state.params["model"]["w"].sum()


class StandardNormal2d(UniformImages):
  family, branch = "normalizing flow", "explicit, tractable"

  def log_density(self, state, x, rng):
    return jax.scipy.stats.norm.logpdf(x).sum(-1)


class NoisyBound2d(StandardNormal2d):
  """A stochastic lower bound: the exact log-density minus |noise| drawn from `rng`."""

  likelihood = "lower_bound"

  def log_density(self, state, x, rng):
    return super().log_density(state, x, rng) - jnp.abs(jax.random.normal(rng, (x.shape[0],)))


class NoLikelihood(UniformImages):
  family, branch = "GAN", "implicit"
  likelihood = None


def _config(model, dataset):
  return ml_collections.ConfigDict({"model": {"name": model}, "data": {"name": dataset, "eval_batch_size": 64}})


def _pixel_features(images):
  """A stand-in feature network: mean intensity of 16 horizontal bands."""
  images = np.asarray(images)
  return images.reshape(len(images), 16, -1).mean(-1)


def test_uniform_image_model_is_8_bits_and_sample_metrics_match_direct_computation():
  fam = UniformImages(_config("toy.uniform", "fashion_mnist"), IMAGES)
  state = fam.init(None, None)
  x = np.random.default_rng(0).uniform(size=(300, 28, 28, 1)).round(2).astype(np.float32)
  out = suite.evaluate(fam.config, fam, state, num_samples=200,
                       data=(x, np.zeros(300, np.int32)), feature_network=_pixel_features)
  m = out["metrics"]
  assert m["bits_per_dim"]["value"] == 8.0 and m["bits_per_dim"]["kind"] == "exact"
  assert m["nll"]["value"] == 0.0 and m["nll"]["unit"] == "nats/example"
  assert out["step"] == 7 and out["parameters"] == 3 and out["family"] == "VAE"
  fake = suite.draw_samples(fam, state, 200, 64)
  assert fake.shape == (200, 28, 28, 1)
  real_f, fake_f = _pixel_features(x[:200]), _pixel_features(fake)
  assert np.isclose(m["fid_fmnist"]["value"], frechet.frechet_distance_of_features(real_f, fake_f))
  assert (m["precision"]["value"], m["recall"]["value"]) == precision_recall.precision_recall(real_f, fake_f)
  assert "not Inception FID" in m["fid_fmnist"]["convention"]
  json.dumps(out)  # eval.json must be serialisable


def test_points_report_nats_only_and_match_the_closed_form():
  fam = StandardNormal2d(_config("toy.normal", "toy2d_moons"), POINTS)
  state = fam.init(None, None)
  x = np.random.default_rng(1).normal(size=(130, 2)).astype(np.float32)
  out = suite.evaluate(fam.config, fam, state, data=(x, np.zeros(130, np.int32)))
  expected = -jax.scipy.stats.norm.logpdf(x).sum(-1).mean()
  assert np.isclose(out["metrics"]["nll"]["value"], expected, rtol=1e-6)
  assert "bits_per_dim" not in out["metrics"]
  assert set(out["skipped"]) == {"fid", "pr"}


def test_stochastic_bound_draws_fresh_noise_for_every_batch():
  # Twenty copies of one 64-point batch: with one key reused per batch every copy would get
  # the same noise and the split mean would be no more precise than a single batch's.
  fam = NoisyBound2d(_config("toy.noisy", "toy2d_moons"), POINTS)
  state = fam.init(None, None)
  x = np.tile(np.random.default_rng(2).normal(size=(64, 2)).astype(np.float32), (20, 1))
  exact = -jax.scipy.stats.norm.logpdf(x).sum(-1)
  out = suite.evaluate(fam.config, fam, state, data=(x, np.zeros(len(x), np.int32)))
  assert out["metrics"]["nll"]["kind"] == "lower_bound"
  nll = -suite._padded_call(lambda xb, rng: fam.log_prob(state, xb, rng), x, 64, rng=jax.random.key(0))
  assert np.isclose(out["metrics"]["nll"]["value"], nll.mean(), rtol=1e-6)
  gaps = (nll - exact).reshape(20, 64)
  assert not np.allclose(gaps[0], gaps[1])
  # E|N(0,1)| = sqrt(2/pi); 1280 independent draws put the mean within 0.05 of it.
  assert abs(gaps.mean() - np.sqrt(2 / np.pi)) < 0.05


def test_likelihood_on_the_first_examples_is_marked_in_the_table():
  fam = StandardNormal2d(_config("toy.normal", "toy2d_moons"), POINTS)
  state = fam.init(None, None)
  x = np.random.default_rng(3).normal(size=(130, 2)).astype(np.float32)
  out = suite.evaluate(fam.config, fam, state, data=(x, np.zeros(130, np.int32)), num_examples=30)
  assert np.isclose(out["metrics"]["nll"]["value"], -jax.scipy.stats.norm.logpdf(x[:30]).sum(-1).mean(), rtol=1e-6)
  assert out["likelihood_examples"] == 30
  assert results.row_from_eval(out)["nats"].endswith("(first 30)")
  whole = suite.evaluate(fam.config, fam, state, data=(x, np.zeros(130, np.int32)))
  assert "likelihood_examples" not in whole and "first" not in results.row_from_eval(whole)["nats"]


def test_likelihood_spaces_are_declared_or_follow_the_data():
  from jgen import config as config_lib
  from jgen import registry
  from tests.helpers import config_path

  def space(spec):
    return registry.build(config_lib.load(config_path(spec))).space

  assert space("configs/vae/conv_digits.py:smoke") == "binary"  # declared by the VAE
  assert space("configs/diffusion/ddpm_fashion_mnist.py:smoke") == "discrete_8bit"  # declared by the U-Net DDPM
  assert space("configs/classical/ppca_fashion_mnist.py:smoke") == "continuous_unit"  # the images' own
  assert space("configs/diffusion/ddpm_toy2d.py:smoke") == "continuous"  # the points' own
  assert UniformImages(_config("m", "fashion_mnist"), IMAGES).main_metric == "bits_per_dim"
  assert StandardNormal2d(_config("m", "toy2d_moons"), POINTS).main_metric == "nll"


def test_families_without_likelihood_are_skipped_with_a_reason():
  fam = NoLikelihood(_config("toy.gan", "fashion_mnist"), IMAGES)
  out = suite.evaluate(fam.config, fam, fam.init(None, None), metrics=("nll", "iwae"),
                       data=(np.zeros((10, 28, 28, 1), np.float32), np.zeros(10, np.int32)))
  assert out["metrics"] == {} and set(out["skipped"]) == {"nll", "iwae"}


def _write_run(path, family, model, metrics, run):
  path.mkdir(parents=True)
  (path / "eval.json").write_text(json.dumps({"family": family, "model": model, "dataset": "fashion_mnist",
                                              "metrics": metrics, "step": run["steps"]}))
  (path / "run.json").write_text(json.dumps(run))


def test_results_table_collects_runs_in_taxonomy_order(tmp_path):
  run = {"steps": 1000, "train_seconds": 150.0, "device": "1x cpu", "parameters": 12345}
  _write_run(tmp_path / "gan", "GAN", "gan.dcgan",
             {"fid_fmnist": {"value": 12.3456}, "precision": {"value": 0.71}, "recall": {"value": 0.5}}, run)
  _write_run(tmp_path / "nested" / "vae", "VAE", "vae.conv",
             {"nll": {"value": 240.0, "kind": "lower_bound"}, "bits_per_dim": {"value": 4.1234, "kind": "lower_bound"},
              "nll_iwae": {"value": 230.0, "kind": "importance_weighted", "num_samples": 5000}}, run)
  (tmp_path / "broken").mkdir()
  (tmp_path / "broken" / "eval.json").write_text("{not json")
  rows = results.collect(str(tmp_path))
  assert [r["model"] for r in rows] == ["vae.conv", "gan.dcgan"]  # VAE comes before GAN in the taxonomy
  vae, gan = rows
  assert vae["bits/dim"] == "<= 4.123" and vae["nats"] == "~ 230.000 (K=5000)"
  assert gan["FID-FMNIST"] == "12.35" and gan["bits/dim"] == "" and gan["train time"] == "2.5 min"
  assert gan["parameters"] == "12,345"
  path = results.write_results_md(rows, str(tmp_path / "out" / "RESULTS.md"))
  text = open(path).read()
  assert "| family | model | dataset | bits/dim |" in text
  assert "| VAE | vae.conv | fashion_mnist | <= 4.123 |" in text
  assert "not Inception FID" in text


def test_reference_rows_order_floor_below_corruptions():
  from jgen.eval import reference

  rng = np.random.default_rng(2)
  # smooth random "images": a low-resolution pattern upsampled, so blur and noise change them
  def images(n):
    return np.kron(rng.uniform(size=(n, 7, 7, 1)), np.ones((1, 4, 4, 1))).astype(np.float32)

  test_x, train_x = images(300), images(600)
  train_labels = np.repeat(np.arange(2), 300)
  def texture_features(x):  # band means and band edge energy: noise raises the energy, blur lowers it
    x = np.asarray(x)[..., 0]
    edges = np.abs(np.diff(x, axis=2)).reshape(len(x), 14, -1).mean(-1)
    return np.concatenate([x.reshape(len(x), 14, -1).mean(-1), 10 * edges], 1)

  rows = {r["name"]: r for r in reference.reference_rows(200, texture_features, (test_x, train_x, train_labels))}
  assert len(rows) == 6 and all(r["n"] == 200 for r in rows.values())
  floor = rows["train subset (floor)"]["fid_fmnist"]
  assert floor < rows["test + noise sd 0.2"]["fid_fmnist"]
  assert rows["test + noise sd 0.05"]["fid_fmnist"] < rows["test + noise sd 0.2"]["fid_fmnist"]
  assert rows["test blurred (sd 1 px)"]["fid_fmnist"] < rows["test blurred (sd 2 px)"]["fid_fmnist"]
  assert "| train subset (floor) | 200 |" in reference.format_rows(list(rows.values()))
