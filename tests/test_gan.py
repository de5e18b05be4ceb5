"""The GAN family: losses and penalties against hand computations, the n-critic step against separate updates,
conditioning reaching both networks, per-class grids, and the mode-collapse diagnostics."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgen import config as config_lib
from jgen import registry
from jgen.data import spec as spec_lib
from jgen.errors import UserError
from jgen.eval.class_coverage import coverage
from jgen.families.gan import objectives
from jgen.train import sampling
from tests.helpers import config_path

WGAN = "configs/gan/wgan_gp_fashion_mnist.py:smoke"
CGAN = "configs/gan/cgan_fashion_mnist.py:smoke"


def _family(spec, *overrides):
  return registry.build(config_lib.load(config_path(spec), ["train.evals=''", *overrides]))


def _batch(family, n, seed=0):
  batch = spec_lib.to_model_input(family.spec.example_batch(n))
  batch["x"] = jax.random.uniform(jax.random.key(seed), batch["x"].shape)
  batch["label"] = jnp.arange(n, dtype=jnp.int32) % 10
  return batch


# ---- losses and penalties -------------------------------------------------------------------------------
def _tiny_critic(w, a):
  """f(x) = a . tanh(W x) on flattened x: its input gradient is W^T (a * (1 - tanh(W x)^2))."""
  return lambda x, label=None: jnp.tanh(x.reshape(x.shape[0], -1) @ w.T) @ a


def test_gradient_penalty_equals_a_hand_computation():
  rng = np.random.default_rng(0)
  w, a = rng.normal(size=(5, 12)).astype(np.float32), rng.normal(size=5).astype(np.float32)
  real, fake = rng.normal(size=(7, 2, 2, 3)).astype(np.float32), rng.normal(size=(7, 2, 2, 3)).astype(np.float32)
  key = jax.random.key(3)
  got = objectives.gradient_penalty(_tiny_critic(w, a), real, fake, key)
  e = np.asarray(jax.random.uniform(key, (7, 1, 1, 1)))  # the interpolation weights the penalty draws
  x_hat = (e * real + (1 - e) * fake).reshape(7, -1).astype(np.float64)
  h = np.tanh(x_hat @ w.T)
  grads = (a * (1 - h ** 2)) @ w  # [7, 12], one gradient per example
  norms = np.linalg.norm(grads, axis=1)
  np.testing.assert_allclose(got, np.mean((norms - 1.0) ** 2), rtol=1e-5)
  np.testing.assert_allclose(objectives.input_gradient_norms(_tiny_critic(w, a), jnp.asarray(x_hat, jnp.float32)),
                             norms, rtol=1e-5)
  # R1 on real images: mean squared gradient norm.
  h = np.tanh(real.reshape(7, -1) @ w.T)
  r1 = np.mean(np.sum(((a * (1 - h ** 2)) @ w) ** 2, axis=1))
  np.testing.assert_allclose(objectives.r1_penalty(_tiny_critic(w, a), real), r1, rtol=1e-5)


def test_penalty_gradients_are_per_example():
  """A critic that couples the batch (subtracts the batch mean) has per-example gradients different from the
  gradient of its sum: the penalty takes each example alone."""
  w = jnp.arange(1.0, 5.0)
  critic = lambda x, label=None: jnp.square(x @ w - jnp.mean(x @ w))
  x = jnp.array([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 1.0], [3.0, 0.0, 0.0, 1.0]])
  alone = objectives.input_gradient_norms(critic, x)
  np.testing.assert_allclose(alone, np.zeros(3), atol=1e-5)  # one example is its own mean: constant 0
  summed = jnp.linalg.norm(jax.grad(lambda v: critic(v).sum())(x), axis=1)
  assert float(summed.max()) > 1.0


def test_gradient_penalty_is_safe_where_the_input_gradient_is_zero():
  """A critic constant in x has zero input gradients: the penalty is 1 and its parameter gradient finite."""
  real, fake = jnp.ones((4, 3)), jnp.zeros((4, 3))

  def penalty(params):
    critic = lambda x, label=None: params["b"] + 0.0 * jnp.sum(x * params["w"], axis=-1)
    return objectives.gradient_penalty(critic, real, fake, jax.random.key(0)) + objectives.r1_penalty(critic, real)

  params = {"b": jnp.ones((4,)), "w": jnp.ones((3,))}
  np.testing.assert_allclose(penalty(params), 1.0, rtol=1e-5)
  grads = jax.grad(penalty)(params)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_losses_match_their_definitions():
  real, fake = jnp.array([2.0, -1.0, 0.5]), jnp.array([-0.3, 1.5, 0.0])
  bce = lambda logits, t: optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, t))
  np.testing.assert_allclose(objectives.discriminator_loss("ns", real, fake), jnp.mean(bce(real, 1) + bce(fake, 0)),
                             rtol=1e-6)
  np.testing.assert_allclose(objectives.discriminator_loss("ns", real, fake, 0.1), jnp.mean(bce(real, 0.9) + bce(fake, 0)),
                             rtol=1e-6)
  np.testing.assert_allclose(objectives.generator_loss("ns", fake), jnp.mean(bce(fake, 1)), rtol=1e-6)
  np.testing.assert_allclose(objectives.discriminator_loss("hinge", real, fake),
                             np.mean(np.maximum(0, 1 - real) + np.maximum(0, 1 + fake)), rtol=1e-6)
  np.testing.assert_allclose(objectives.discriminator_loss("wasserstein", real, fake), np.mean(fake) - np.mean(real),
                             rtol=1e-6)
  np.testing.assert_allclose(objectives.generator_loss("hinge", fake), -np.mean(fake), rtol=1e-6)


# ---- the n-critic step ---------------------------------------------------------------------------------
def _adam_counts(opt_state):
  adam = lambda s: isinstance(s, optax.ScaleByAdamState)
  return [int(s.count) for s in jax.tree.leaves(opt_state, is_leaf=adam) if adam(s)]


def test_five_critic_updates_then_one_generator_update():
  family = _family(WGAN, "train.batches_per_step=5", "optim.gen.ema_decay=0.9", "model.spectral_norm=True")
  batches = [_batch(family, 8, seed=i) for i in range(5)]
  state = family.init(jax.random.key(0), batches[0])
  stacked = jax.tree.map(lambda *a: jnp.stack(a), *batches)
  rng = jax.random.key(7)
  new, metrics = jax.jit(family.train_step)(state, stacked, rng)
  assert _adam_counts(new.opt_state["disc"])[0] == 5 and _adam_counts(new.opt_state["gen"])[0] == 1
  assert int(new.step) == 1

  # The same as five separate critic updates followed by one generator update, with the step's keys.
  keys = jax.random.split(rng, 6)
  critic = jax.jit(family.critic_update)
  manual = state
  for i in range(5):
    manual, _ = critic(manual, batches[i], keys[i])
  manual, _ = jax.jit(lambda s, k: family.generator_update(s, k, 8))(manual, keys[5])
  manual = manual.replace(step=manual.step + 1)
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(manual)):
    # Fused vs separate compilation round differently; Adam steps are lr = 1e-3, far above this tolerance.
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
  # Every part of the state moved: both networks, the EMA and the spectral norms' vectors.
  for name, a, b in (("gen", new.params["gen"], state.params["gen"]), ("disc", new.params["disc"], state.params["disc"]),
                     ("ema", new.ema["gen"], state.ema["gen"]),
                     ("u", new.model_state["disc"], state.model_state["disc"])):
    assert any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))), name
  assert np.isfinite(float(metrics["d_penalty"])) and float(metrics["d_penalty"]) > 0


# ---- conditioning --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cgan():
  family = _family(CGAN)
  batch = _batch(family, 16)
  return family, family.init(jax.random.key(0), batch), batch


def test_the_label_changes_the_sample(cgan):
  family, state, _ = cgan
  z = jax.random.normal(jax.random.key(1), (4, family.config.model.latent_dim))
  a = family.decode(state, z, {"label": jnp.zeros(4, jnp.int32)})
  b = family.decode(state, z, {"label": jnp.full(4, 7, jnp.int32)})
  assert float(jnp.abs(a - b).max()) > 1e-3
  # sample() with the same key and labels is decode() of the same latents: deterministic in the label.
  s1 = family.sample(state, jax.random.key(2), 4, {"label": jnp.full(4, 3, jnp.int32)})
  s2 = family.sample(state, jax.random.key(2), 4, {"label": jnp.full(4, 3, jnp.int32)})
  np.testing.assert_array_equal(s1, s2)


def test_the_label_reaches_the_discriminator(cgan):
  family, state, batch = cgan
  disc = family._discriminator(state)
  x = batch["x"][:4] * 2 - 1
  out = [disc(x, jnp.full(4, c, jnp.int32)) for c in range(10)]
  assert float(jnp.abs(out[0] - out[5]).max()) > 1e-4
  # And it reaches the loss: the critic update's gradient depends on the batch's labels.
  relabelled = {**batch, "label": (batch["label"] + 3) % 10}
  a, _ = family.critic_update(state, batch, jax.random.key(0))
  b, _ = family.critic_update(state, relabelled, jax.random.key(0))
  assert not np.allclose(jax.tree.leaves(a.params["disc"])[0], jax.tree.leaves(b.params["disc"])[0])


class _LabelPainter:
  """A stand-in conditional family whose samples are images filled with their label."""

  class spec:
    num_classes = 10

  def sample(self, state, rng, n, cond=None):
    return jnp.broadcast_to(cond["label"].astype(jnp.float32)[:, None, None, None], (n, 4, 4, 1))


def test_per_class_grid_rows_hold_the_requested_labels_in_order():
  sampler = sampling.Sampler(_LabelPainter())
  x, labels = sampling.per_class(sampler, None, jax.random.key(0), 3)
  assert x.shape == (10, 3, 4, 4, 1)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3).reshape(10, 3))
  np.testing.assert_array_equal(x[:, :, 0, 0, 0], labels)


def test_default_conditions_cycle_over_the_classes(cgan):
  family, _, _ = cgan
  np.testing.assert_array_equal(family.default_cond(jax.random.key(0), 12)["label"], np.arange(12) % 10)


# ---- diagnostics and config rules -----------------------------------------------------------------------
def test_class_coverage_of_collapsed_and_balanced_samples():
  eye = np.eye(10)
  balanced = coverage(np.tile(eye, (5, 1)), requested=np.tile(np.arange(10), 5))
  assert balanced == {"classes_covered": 10.0, "class_kl": pytest.approx(0.0, abs=1e-12), "class_accuracy": 1.0}
  collapsed = coverage(np.tile(eye[3], (50, 1)), requested=np.tile(np.arange(10), 5))
  assert collapsed["classes_covered"] == 1.0
  np.testing.assert_allclose(collapsed["class_kl"], np.log(10))
  np.testing.assert_allclose(collapsed["class_accuracy"], 0.1)
  two = coverage(np.concatenate([np.tile(eye[0], (30, 1)), np.tile(eye[1], (10, 1))]))
  np.testing.assert_allclose(two["class_kl"], 0.75 * np.log(7.5) + 0.25 * np.log(2.5))
  assert "class_accuracy" not in two


@pytest.mark.parametrize("overrides,message", [
    (["model.loss=wasserstein", "model.penalty=none"], "Lipschitz"),
    (["model.loss=hinge", "model.label_smoothing=0.1"], "non-saturating"),
    (["model.penalty=gp", "model.penalty_weight=0"], "penalty_weight"),
    (["model.upsample=bilinear"], "upsample"),
])
def test_bad_gan_settings_are_one_line(overrides, message):
  with pytest.raises(UserError, match=message):
    config_lib.load(config_path("configs/gan/dcgan_fashion_mnist.py:smoke"), overrides)


# ---- the commands on a trained conditional GAN -------------------------------------------------------------
@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
  from jgen import cli

  workdir = str(tmp_path_factory.mktemp("cgan") / "run")
  assert cli.main(["train", config_path(CGAN), "--workdir", workdir, "--quiet", "--set", "train.steps=20",
                   "--set", "train.evals=classes:100", "--set", "optim.gen.ema_decay=0.9"]) == 0
  return workdir


def test_evaluate_reports_class_coverage_and_accuracy(cgan_run):
  import json

  from jgen import cli

  assert cli.main(["evaluate", "--workdir", cgan_run, "--metrics", "fid,classes", "--num-samples", "200"]) == 0
  metrics = json.load(open(f"{cgan_run}/eval.json"))["metrics"]
  assert {"fid_fmnist", "kid_fmnist", "classes_covered", "class_kl", "class_accuracy"} <= set(metrics)
  assert 1 <= metrics["classes_covered"]["value"] <= 10 and metrics["classes_covered"]["num_samples"] == 200
  assert 0.0 <= metrics["class_kl"]["value"] <= np.log(10) + 1e-9
  assert len(metrics["intra_fid_fmnist"]["per_class"]) == 10
  assert metrics["intra_fid_fmnist"]["value"] == pytest.approx(np.mean(metrics["intra_fid_fmnist"]["per_class"]))
  logged = [json.loads(line) for line in open(f"{cgan_run}/metrics.jsonl")]
  assert any("eval/class_accuracy" in r for r in logged)  # the in-loop evaluator
  # The same checkpoint's trained (not EMA) weights, into a file of their own.
  assert cli.main(["evaluate", "--workdir", cgan_run, "--metrics", "fid", "--num-samples", "200",
                   "--weights", "trained"]) == 0
  trained = json.load(open(f"{cgan_run}/eval_trained_weights.json"))
  assert trained["weights"] == "trained" and json.load(open(f"{cgan_run}/eval.json"))["weights"] == "ema"
  assert trained["metrics"]["fid_fmnist"]["value"] != metrics["fid_fmnist"]["value"]


def test_per_class_grid_and_interpolation_rows_per_class(cgan_run, tmp_path, capsys):
  import json

  from jgen import cli

  out = str(tmp_path / "grid.png")
  assert cli.main(["sample", "--workdir", cgan_run, "--per-class", "4", "--out", out]) == 0
  assert os.path.getsize(out) > 0 and "10 x 4" in capsys.readouterr().out
  walk = str(tmp_path / "walk.png")
  assert cli.main(["latent", "interpolate", "--workdir", cgan_run, "--from", "1", "--to", "2", "--steps", "5",
                   "--out", walk]) == 0
  record = json.load(open(str(tmp_path / "walk.json")))
  assert len(record["row_labels"]) == 10 and record["row_labels"][0] == "T-shirt/top"
  assert cli.main(["sample", "--workdir", cgan_run, "--per-class", "4", "--kw", "label=3", "--out", out]) == 2
  assert "leave out --kw label" in capsys.readouterr().err


def test_intra_class_fid_compares_each_class_with_its_own_images():
  from jgen.eval.suite import class_metrics

  class _Net:  # features: the first 3 pixels; logits: 10 scores from the first pixel's class mean
    def __call__(self, images):
      return np.asarray(images).reshape(len(images), -1)[:, :3].astype(np.float64)

    def logits(self, images):
      return -np.abs(np.asarray(images).reshape(len(images), -1)[:, :1] * 10 - np.arange(10))

  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(10), 50)
  real = (labels[:, None] / 10.0 + 0.01 * rng.normal(size=(500, 784))).reshape(500, 28, 28, 1)
  net = _Net()
  same = class_metrics(net.logits(real), labels, net(real), net(real), labels)
  assert same["intra_fid_fmnist"]["value"] < 1e-3 and same["class_accuracy"]["value"] == 1.0
  swapped = class_metrics(net.logits(real), (labels + 1) % 10, net(real), net(real), labels)
  assert swapped["intra_fid_fmnist"]["value"] > 0.02  # class means 0.1 apart in 3 features and swapped["class_accuracy"]["value"] == 0.0
