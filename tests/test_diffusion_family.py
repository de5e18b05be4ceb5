"""The diffusion family through its contract: training learns a 2-D distribution, EMA, guidance,
and the image model's steps, bound and samples on the smoke config."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import config as config_lib
from jgen import registry
from jgen.data.toy2d import sample_toy2d
from jgen.families.diffusion import samplers
from tests.helpers import REPO


def _load(rel, variant, overrides=()):
  return config_lib.load(os.path.join(REPO, rel) + ":" + variant, list(overrides))


def _with_sampler(family, sampler, steps):
  """The same family with another sampler (a config field: static, not a traced condition)."""
  config = family.config.copy_and_resolve_references()
  config.unlock()
  config.model.sampler = sampler
  config.model.sample_steps = steps or 50
  return registry.build(config, family.spec)


def mmd2(x, y, scales=(0.05, 0.2, 1.0)):
  """Squared maximum mean discrepancy with a sum of RBF kernels (biased V-statistic)."""
  def k(a, b):
    d2 = ((a[:, None, :] - b[None, :, :])**2).sum(-1)
    return sum(np.exp(-d2 / (2 * s**2)) for s in scales)
  return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())


def test_registry_places_both_models_in_diffusion():
  for name in ["ddpm.unet", "ddpm.mlp"]:
    entry = registry.lookup(name)
    assert entry.family == "diffusion" and entry.cls.likelihood == "lower_bound"
  assert registry.build(_load("configs/diffusion/ddpm_fashion_mnist.py", "smoke")).main_metric == "bits_per_dim"


@pytest.fixture(scope="module")
def trained_moons():
  # T = 200 keeps the 200-step ancestral sampler cheap; the rest is the toy config.
  config = _load("configs/diffusion/ddpm_toy2d.py", "full",
                 ["model.num_steps=200", "model.hidden=128", "optim.ema_decay=0.995", "optim.warmup_steps=0",
                  "optim.decay='constant'", "optim.lr=2e-3"])
  family = registry.build(config)
  data = sample_toy2d("moons", 200_000, seed=0).astype(np.float32)
  state = family.init(jax.random.key(0), {"x": jnp.asarray(data[:8])})
  state0 = state
  step = jax.jit(family.train_step)
  rng = np.random.default_rng(0)
  for i in range(2000):
    batch = {"x": jnp.asarray(data[rng.integers(0, len(data), 256)])}
    state, metrics = step(state, batch, jax.random.key(i))
  return family, state0, state, float(metrics["loss"])


def test_trained_toy_model_samples_match_the_data(trained_moons):
  family, _, state, loss = trained_moons
  assert loss < 0.6
  test = sample_toy2d("moons", 1000, seed=1)
  reference = sample_toy2d("moons", 1000, seed=2)
  # A Gaussian with the data's mean and covariance: what a sampler that ignores the model's
  # structure would give. The threshold sits between it and fresh data.
  gauss = np.random.default_rng(3).multivariate_normal(test.mean(0), np.cov(test.T), 1000)
  threshold = 0.25 * mmd2(gauss, test)
  assert mmd2(reference, test) < 0.2 * threshold
  scores = {}
  for sampler, steps in [("ddim", 50), ("ddpm", None)]:
    x = np.asarray(jax.jit(lambda s, r: _with_sampler(family, sampler, steps).sample(s, r, 1000))(
        state, jax.random.key(4)))
    assert x.shape == (1000, 2)
    scores[sampler] = mmd2(x, test)
  # A wrong sampler: DDIM whose clean estimate forgets to divide by sqrt(abar_t).
  sched = family.sched

  def wrong_predict(xt, t):
    eps, _ = family.predictor(family.network(state))(xt, t)
    return eps, xt - jnp.sqrt(1 - sched.alphas_cumprod[t])[:, None] * eps

  x_T = jax.random.normal(jax.random.key(4), (1000, 2))
  wrong = jax.jit(lambda x: samplers.ddim_sample(wrong_predict, sched, x, jax.random.key(5), steps=50))(x_T)
  scores["wrong"] = mmd2(np.asarray(wrong), test)
  assert scores["ddim"] < threshold and scores["ddpm"] < threshold and scores["wrong"] > threshold, (scores, threshold)


def test_toy_eval_bound_is_finite_and_above_zero_loss(trained_moons):
  family, _, state, _ = trained_moons
  batch = {"x": jnp.asarray(sample_toy2d("moons", 512, seed=5))}
  metrics = jax.jit(family.eval_step)(state, batch, jax.random.key(6))
  assert set(metrics) == {"loss", "nll"} and metrics["nll"].shape == (512,)
  # Moons are thin curves of noise 0.05: the density is high, so the NLL is well below that
  # of the moment-matched Gaussian, log(2 pi e) + 0.5 log det cov.
  x = np.asarray(batch["x"])
  gaussian_nll = math.log(2 * math.pi * math.e) + 0.5 * np.linalg.slogdet(np.cov(x.T))[1]
  assert float(metrics["nll"].mean()) < gaussian_nll - 0.5
  # log_prob is the same bound (all T terms here): with eval_step's key, the same numbers.
  log_p = jax.jit(family.log_prob)(state, batch["x"], jax.random.key(6))
  np.testing.assert_allclose(-log_p, metrics["nll"], rtol=1e-5)


def test_ema_follows_its_update_rule(trained_moons):
  family, state0, _, _ = trained_moons
  batch = {"x": jnp.asarray(sample_toy2d("moons", 64, seed=7))}
  state1, _ = jax.jit(family.train_step)(state0, batch, jax.random.key(8))
  decay = min(0.995, 2.0 / 11.0)
  expected = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state0.ema["model"], state1.params["model"])
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(state1.ema["model"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(state1.params), jax.tree.leaves(state0.params)))


def test_guidance_mixes_conditional_and_unconditional_outputs():
  family = registry.build(_load("configs/diffusion/ddpm_fashion_mnist.py", "smoke"))
  # A stand-in network whose output is its label, so the mixture is visible: u + w (c - u).
  model = lambda x, t, label=None: jnp.broadcast_to(label.astype(jnp.float32)[:, None, None, None], x.shape)
  xt, t = jnp.zeros((2, 4, 4, 1)), jnp.array([500, 500])
  label = jnp.array([3, 7])
  a = float(jnp.sqrt(family.sched.alphas_cumprod[500]))
  b = float(jnp.sqrt(1 - family.sched.alphas_cumprod[500]))
  for w in [0.0, 1.0, 3.0]:
    eps, _ = family.predictor(model, label, w)(xt, t)
    mixed = 10.0 + w * (label - 10.0)  # the null label is 10
    # eps is the output, recomputed from the clipped x_0 = clip(-b eps / a).
    x0 = np.clip(-b * mixed / a, -1, 1)
    np.testing.assert_allclose(eps[:, 0, 0, 0], -a * x0 / b, rtol=1e-5)


def test_image_model_smoke_steps():
  # The smoke config with a one-level U-Net: the same code paths, a quicker compile.
  config = _load("configs/diffusion/ddpm_fashion_mnist.py", "smoke",
                 ["model.channels=8", "model.channel_mults=(1,)", "model.attention_levels=(0,)"])
  family = registry.build(config)
  rng = np.random.default_rng(0)
  batch = {"x": jnp.asarray(rng.integers(0, 256, (8, 28, 28, 1)) / 255.0, jnp.float32),
           "label": jnp.asarray(rng.integers(0, 10, 8), jnp.int32)}
  # An rbg key compiles the many initializers much faster than the default threefry.
  state = jax.jit(family.init)(jax.random.key(0, impl="rbg"), batch)
  state, metrics = jax.jit(family.train_step)(state, batch, jax.random.key(1))
  assert np.isfinite(float(metrics["loss"]))
  ev = jax.jit(family.eval_step)(state, batch, jax.random.key(2))
  assert set(ev) == {"loss", "nll", "bits_per_dim"} and ev["nll"].shape == (8,)
  np.testing.assert_allclose(ev["bits_per_dim"], ev["nll"] / (784 * math.log(2)), rtol=1e-6)
  # An untrained model is far from the data, but the decoder's mass cannot exceed one.
  assert float(ev["bits_per_dim"].min()) > 0.0
  cond = {"label": jnp.array([0, 1, 2, 3]), "guidance": jnp.float32(3.0)}
  x = family.sample(state, jax.random.key(3), 4, cond)
  assert x.shape == (4, 28, 28, 1) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
  x2 = family.sample(state, jax.random.key(3), 4, cond)
  np.testing.assert_array_equal(x, x2)
