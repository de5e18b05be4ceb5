"""Energy-based models: Langevin samples a known energy, quadrature normalises exactly, a trained 2-D EBM
beats a Gaussian in exact nats, the replay buffer is written back, sharded over `data` and resumed exactly,
Langevin's clipping and clamping hold, the score ranks data above noise, bad values are one line."""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from jgen import config as config_lib
from jgen.data import sources
from jgen.errors import UserError
from jgen.families.ebm import quadrature, replay
from jgen.families.ebm.langevin import langevin
from jgen.train import checkpoint, loop
from tests.helpers import config_path, logged

TOY = "configs/ebm/langevin_toy2d.py:smoke"
FMNIST = "configs/ebm/langevin_fashion_mnist.py:smoke"


def _load(spec, *overrides):
  return config_lib.load(config_path(spec), list(overrides))


def _gaussian_energy(mean, std):
  return lambda x: 0.5 * jnp.sum(((x - mean) / std)**2, axis=-1)


def test_langevin_samples_a_gaussian_with_its_mean_and_variance():
  mean, std = jnp.array([1.0, -0.5]), jnp.array([0.5, 1.0])
  step = 0.002
  x0 = jax.random.uniform(jax.random.key(0), (20_000, 2), minval=-3.0, maxval=3.0)
  run = jax.jit(lambda x, key: langevin(_gaussian_energy(mean, std), x, key, steps=3000, step_size=step,
                                        noise=float(np.sqrt(2 * step))))
  x = np.asarray(run(x0, jax.random.key(1)))
  np.testing.assert_allclose(x.mean(0), mean, atol=0.03)
  # The chain's stationary variance is std^2 up to an O(step / std^2) discretisation bias (< 1% here).
  np.testing.assert_allclose(x.var(0), std**2, rtol=0.05)
  assert abs(np.corrcoef(x.T)[0, 1]) < 0.03


def test_langevin_clips_gradients_and_clamps_to_the_range():
  steep = lambda x: 1e3 * jnp.sum(x.reshape(x.shape[0], -1), axis=-1)  # gradient 1000 everywhere
  x0 = jnp.zeros((4, 3, 3, 1))
  one = langevin(steep, x0, jax.random.key(0), steps=1, step_size=10.0, noise=0.0, grad_clip=0.03)
  np.testing.assert_allclose(one, -0.3, rtol=1e-6)  # moved by step_size * clip, not by 10 * 1000
  many = langevin(steep, x0, jax.random.key(0), steps=60, step_size=10.0, noise=0.5, grad_clip=0.03,
                  bounds=(-1.0, 1.0))
  assert float(many.min()) >= -1.0 and float(many.max()) <= 1.0 and float(many.min()) == -1.0


def test_quadrature_normalises_known_densities():
  # A normalised Gaussian density integrates to 1 (log Z = 0) on a box that holds it.
  normalised = lambda x: _gaussian_energy(jnp.array([0.3, -0.2]), 0.4)(x) + jnp.log(2 * jnp.pi * 0.16)
  assert abs(float(quadrature.log_normaliser(normalised, -3.0, 3.0, 256))) < 1e-4
  # An unnormalised quadratic energy: Z = 2 pi s^2 in closed form.
  s = 0.25
  log_z = quadrature.log_normaliser(lambda x: jnp.sum(x**2, -1) / (2 * s**2), -2.0, 2.0, 200)
  np.testing.assert_allclose(float(log_z), np.log(2 * np.pi * s**2), atol=1e-4)
  points, area = quadrature.grid(-1.0, 1.0, 4)
  assert points.shape == (16, 2) and area == pytest.approx(0.25) and float(points.min()) == -0.75


def test_spectral_norm_divides_by_the_top_singular_value_and_calls_are_pure():
  from jgen.nn.spectral_norm import SpectralNormed, update_spectral_norms
  from jgen.train.state import batch_stats

  layer = SpectralNormed(nnx.Linear(6, 4, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
  w = np.asarray(layer.layer.kernel[...])
  top = np.linalg.svd(w, compute_uv=False)[0]
  np.testing.assert_allclose(float(layer.sigma()), top, rtol=1e-4)
  x = jax.random.normal(jax.random.key(2), (3, 6))
  expected = np.asarray(x) @ (w / top) + np.asarray(layer.layer.bias[...])
  u = np.asarray(layer.u[...])
  np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(layer(x), layer(x))
  np.testing.assert_array_equal(layer.u[...], u)  # calls never move the power iteration
  np.testing.assert_array_equal(layer.layer.kernel[...], w)  # nor write the normalised kernel back
  layer.layer.kernel[...] = 2.0 * layer.layer.kernel[...]
  update_spectral_norms(layer)
  assert batch_stats(layer)["u"].shape == (4,)
  np.testing.assert_allclose(float(layer.sigma()), 2 * top, rtol=1e-4)


def test_a_spectrally_normed_energy_advances_its_power_iteration_once_per_train_step():
  from jgen import registry
  from jgen.nn.spectral_norm import SpectralNormed

  family = registry.build(_load(FMNIST, "model.spectral_norm=True"))
  batch = {"x": jax.random.uniform(jax.random.key(0), (16, 28, 28, 1)), "label": jnp.zeros((16,), jnp.int32)}
  state = jax.jit(family.init)(jax.random.key(1), batch)
  # Start every layer's u away from its top singular vector, so one power step visibly moves it.
  state = state.replace(model_state=jax.tree.map(lambda u: u[::-1] + 0.3, state.model_state))
  after, metrics = jax.jit(family.train_step)(state, batch, jax.random.key(2))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  layers = lambda s: [m for _, m in nnx.iter_modules(family.network(s)) if isinstance(m, SpectralNormed)]
  assert len(layers(state)) == 4  # two convs and two dense layers
  for before, now in zip(layers(state), layers(after)):
    w = np.asarray(before.layer.kernel[...]).reshape(-1, before.layer.kernel.shape[-1])
    v = w @ np.asarray(before.u[...])
    v /= np.linalg.norm(v)
    u = w.T @ v
    np.testing.assert_allclose(now.u[...], u / np.linalg.norm(u), rtol=1e-4, atol=1e-6)


def test_trained_toy_ebm_beats_a_fitted_gaussian_in_exact_nats(tmp_path):
  overrides = ["model.hidden=64", "model.depth=3", "model.buffer_size=4096", "model.langevin_steps=40",
               "train.steps=800", "train.eval_every=800", "train.ckpt_every=800", "train.eval_batches=1",
               "data.eval_batch_size=2000", "optim.lr=2e-3", "train.sample_num=0"]
  metrics = loop.train(_load(TOY, *overrides), str(tmp_path / "run"), show_progress=False)
  x_train = np.stack([e["x"] for e in sources.load("toy2d_moons", "train").__getitems__(range(10_000))])
  x_val = np.stack([e["x"] for e in sources.load("toy2d_moons", "validation").__getitems__(range(2_000))])
  mean, cov = x_train.mean(0), np.cov(x_train.T)
  d = x_val - mean
  gauss_nll = np.mean(0.5 * np.sum(d @ np.linalg.inv(cov) * d, 1) + 0.5 * np.log(np.linalg.det(2 * np.pi * cov)))
  ebm_nll = metrics["eval/nll_quadrature"]
  assert ebm_nll < gauss_nll - 0.5, (ebm_nll, gauss_nll)
  assert ebm_nll > 0.0  # moons' entropy is about 0.26 nats: below it the quadrature would be wrong


def test_replay_buffer_draws_writes_back_exactly_and_restarts_from_noise():
  buf = replay.init(jax.random.key(0), 64, (2,), -1.0, 1.0)
  x, age, slots = replay.draw(buf, jax.random.key(1), 8, 0.0, -1.0, 1.0)
  rows = np.arange(8) * 8 + np.asarray(slots)  # example b reads its own row of 8 slots
  np.testing.assert_array_equal(x, np.asarray(buf["x"])[rows])
  new = replay.write(buf, slots, x + 5.0, age + 3)
  np.testing.assert_array_equal(np.asarray(new["x"])[rows], np.asarray(x) + 5.0)
  np.testing.assert_array_equal(np.asarray(new["age"])[rows], 3)
  untouched = np.setdiff1d(np.arange(64), rows)
  np.testing.assert_array_equal(np.asarray(new["x"])[untouched], np.asarray(buf["x"])[untouched])
  assert int(new["age"].sum()) == 24
  again, again_age, _ = replay.draw(new, jax.random.key(1), 8, 0.0, -1.0, 1.0)
  np.testing.assert_array_equal(again, np.asarray(x) + 5.0)
  _, age, _ = replay.draw(new, jax.random.key(1), 8, 1.0, -1.0, 1.0)  # every example restarts: age 0
  assert int(age.sum()) == 0


def test_buffer_is_sharded_over_data_and_resumes_exactly(tmp_path):
  common = ["train.log_every=1", "train.ckpt_every=8", "train.eval_every=8", "train.sample_num=0"]
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  loop.train(_load(TOY, "train.steps=16", *common), straight, show_progress=False)
  loop.train(_load(TOY, "train.steps=8", *common), resumed, show_progress=False)
  loop.train(_load(TOY, "train.steps=16", *common), resumed, show_progress=False)  # resumes at step 8
  assert logged(resumed, "train/loss") == logged(straight, "train/loss")
  read = lambda w, s: ocp.StandardCheckpointer().restore(f"{w}/checkpoints/{s}/state")["buffers"]["replay"]
  a, b, half = read(straight, 16), read(resumed, 16), read(straight, 8)
  for key in ("x", "age"):
    np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
  assert not np.array_equal(np.asarray(a["x"]), np.asarray(half["x"])), "refined samples are written back"
  assert int(np.asarray(a["age"]).max()) >= 1

  _, family, state = checkpoint.restore_for_inference(straight)  # on the 8 test devices
  assert len(jax.devices()) == 8
  buffer = state.buffers["replay"]
  assert family.data_sharded_buffers == ("replay",)
  for leaf in (buffer["x"], buffer["age"]):
    assert leaf.sharding.spec == P(("data", "fsdp"))
    assert {s.data.shape[0] for s in leaf.addressable_shards} == {leaf.shape[0] // 8}
  np.testing.assert_array_equal(np.asarray(buffer["x"]), np.asarray(a["x"]))


def test_score_ranks_fashion_mnist_above_outliers_after_smoke_training(tmp_path):
  from sklearn.metrics import roc_auc_score

  from jgen.eval import ood
  from jgen.eval.suite import load_split

  workdir = str(tmp_path / "run")
  loop.train(_load(FMNIST, "train.eval_every=0", "train.sample_num=0"), workdir, show_progress=False)
  _, family, state = checkpoint.restore_for_inference(workdir)
  images, _ = load_split("fashion_mnist", "test", limit=256)
  outliers = ood.outlier_sets(images, 256)
  assert {k: v.shape for k, v in outliers.items()} == {k: images.shape for k in ("noise", "inverted", "digits")}
  assert all(np.array_equal(np.round(v * 255) / 255, v) for v in outliers.values())  # on the 8-bit grid
  assert ood.score_kind(family).startswith("-energy")
  data_score = ood.scores(family, state, images, batch_size=100)
  noise_score = ood.scores(family, state, outliers["noise"], batch_size=100)
  np.testing.assert_allclose(data_score, -np.asarray(family.energy(state, images)), rtol=1e-5, atol=1e-5)
  auroc = ood.auroc(data_score, noise_score)
  labels = np.r_[np.ones(len(images)), np.zeros(len(images))]
  assert auroc == pytest.approx(roc_auc_score(labels, np.r_[data_score, noise_score]))
  assert auroc > 0.95
  samples = np.asarray(jax.jit(lambda s, r: family.sample(s, r, 8))(state, jax.random.key(0)))
  assert samples.shape == (8, 28, 28, 1) and samples.min() >= 0.0 and samples.max() <= 1.0


@pytest.mark.parametrize("override, words", [
    ("model.buffer_size=1000", "multiple of the batch size"),
    ("model.data_range=(1.0,-1.0)", "low < high"),
    ("model.sample_init='chain'", "choose one of noise, buffer"),
    ("model.reinit_prob=1.5", "must be in [0, 1]"),
    ("model.langevin_steps=0", ">= 1"),
])
def test_bad_values_are_one_line(override, words, tmp_path):
  with pytest.raises(UserError) as e:
    config = _load(FMNIST, override)
    loop.Runner(config)  # the family is built here: the rules that need the batch size
  assert words in str(e.value) and "\n" not in str(e.value)
