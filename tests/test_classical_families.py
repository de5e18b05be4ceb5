"""The classical models behind the family contract: configs, jitted init / train_step / eval_step."""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import config as config_lib
from jgen import registry
from jgen.data.spec import DataSpec
from jgen.eval import likelihood
from jgen.families.classical import gmm
from jgen.families.classical import lowrank_gaussian as lrg
from jgen.families.classical import ppca
from jgen.families.classical import synthetic

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs" / "classical"


def _config(name):
  return config_lib.load(f"{CONFIGS / name}.py:smoke")


def _images(n=128, seed=0):
  """Low-rank 28x28 images in [0, 1] on the 8-bit grid."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 4)) @ rng.normal(size=(4, 784)) * 0.1 + 0.5
  return jnp.asarray(np.round(np.clip(x, 0, 1) * 255) / 255, jnp.float32).reshape(n, 28, 28, 1)


def _points(n_per=100, seed=0):
  x, labels = synthetic.blobs(np.random.default_rng(seed), n_per, [[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]], std=0.5)
  return {"x": jnp.asarray(x, jnp.float32), "label": jnp.asarray(labels, jnp.int32)}


def _run(family, batch, steps):
  state = jax.jit(family.init)(jax.random.key(0), batch)
  step = jax.jit(family.train_step)
  history = []
  for i in range(steps):
    state, metrics = step(state, batch, jax.random.key(i + 1))
    history.append({k: float(v) for k, v in metrics.items()})
  return state, history


def test_registered_in_the_taxonomy():
  models = registry.models()
  for name in ("ppca", "factor_analysis", "robust_ppca", "gmm", "bgmm"):
    assert models[name].family == "linear / mixture"
    assert models[name].branch == "classical latent-variable"


@pytest.mark.parametrize("name", ["ppca_fashion_mnist", "gmm_fashion_mnist", "robust_ppca_toy", "bgmm_toy"])
def test_configs_load_in_both_variants(name):
  for variant in ("smoke", "full"):
    config = config_lib.load(f"{CONFIGS / name}.py:{variant}")
    assert registry.lookup(config.model.name).family == "linear / mixture"
    assert config.train.steps > 0 and config.data.batch_size > 0


@pytest.mark.parametrize("name", ["ppca_fashion_mnist", "gmm_fashion_mnist"])
def test_image_families_run_and_report_bits_per_dim(name):
  family = registry.build(_config(name))
  assert family.main_metric == "bits_per_dim"
  batch = {"x": _images(), "label": jnp.zeros((128,), jnp.int32)}
  state, history = _run(family, batch, 3)
  assert all(np.isfinite(h["bits_per_dim"]) for h in history)
  metrics = jax.jit(family.eval_step)(state, batch, jax.random.key(7))
  assert metrics["nll"].shape == (128,)
  np.testing.assert_allclose(metrics["bits_per_dim"], metrics["nll"] / (784 * math.log(2)) + 8, rtol=1e-6)
  # eval_step scores the batch dequantized with its rng, in log_prob's one shared place.
  prep_key, rest_key = jax.random.split(jax.random.key(7))
  deq = likelihood.dequantize(batch["x"], prep_key)
  # float32 rounding of the dequantized pixels and of the low-rank solve differs in and out of jit: up to 0.3
  # nats on some CPUs (terms of thousands of nats cancel), 4e-4 bits/dim; a convention error (a lost 8-bit
  # offset) would be thousands of nats.
  np.testing.assert_allclose(metrics["nll"], -family.log_density(state, deq, rest_key), rtol=1e-5, atol=0.5)
  samples = jax.jit(family.sample, static_argnums=2)(state, jax.random.key(3), 5)
  assert samples.shape == (5, 28, 28, 1)
  assert float(samples.min()) >= 0.0 and float(samples.max()) <= 1.0
  codes = family.encode(state, batch["x"][:6])
  codes = codes[0] if isinstance(codes, tuple) else codes
  assert codes.shape[0] == 6


def test_ppca_family_closed_form_and_em_agree_with_the_module():
  config = _config("ppca_fashion_mnist")
  config.unlock()
  config.model.init = "closed_form"
  family = registry.build(config)
  batch = {"x": _images()}
  state = jax.jit(family.init)(jax.random.key(0), batch)
  x = likelihood.dequantize(batch["x"], jax.random.split(jax.random.key(0))[0]).reshape(128, -1)
  expected = ppca.fit(x, config.model.latent_dim)
  np.testing.assert_allclose(state.params["model"]["sigma2"], expected.sigma2, rtol=1e-4)
  # The closed form is a fixed point of EM: one step on the same data keeps the likelihood. Checked in
  # float64, where the fixed point holds to rounding (in float32 the 784-dim covariance's conditioning
  # leaves errors of ~1e-5 that differ between machines).
  with jax.enable_x64(True):
    x64 = jnp.asarray(np.asarray(x, np.float64))
    fit64 = ppca.fit(x64, config.model.latent_dim)
    mean, cov = lrg.moments(x64)
    after = ppca.em_step(fit64, mean, cov)
    np.testing.assert_allclose(ppca.mean_log_likelihood(after, mean, cov), ppca.mean_log_likelihood(fit64, mean, cov),
                               rtol=1e-10)
  z, _ = family.encode(state, batch["x"][:3])
  assert family.decode(state, z).shape == (3, 28, 28, 1)


def test_gmm_family_restarts_improve_and_use_the_best():
  config = _config("gmm_fashion_mnist")
  config.unlock()
  config.model.covariance_type = "full"
  config.model.num_components = 3
  config.model.num_restarts = 3
  # The family sees what the data is from its spec (three 2-D blobs), not from a dataset name.
  family = registry.build(config, DataSpec(kind="points", shape=(2,), dtype="float32", num_classes=3))
  assert family.main_metric == "nll"
  batch = _points()
  state, history = _run(family, batch, 15)
  nll = [h["nll"] for h in history]
  assert all(b <= a + 1e-4 for a, b in zip(nll, nll[1:]))
  best = int(jnp.argmax(state.buffers["loglik"]))
  params = gmm.GMMParams(**jax.tree.map(lambda a: a[best], state.params["model"]))
  np.testing.assert_allclose(family.log_prob(state, batch["x"], jax.random.key(0)), gmm.log_prob(params, batch["x"]),
                             rtol=1e-6)
  pred = np.asarray(family.predict(state, batch["x"]))
  labels = np.asarray(batch["label"])
  assert all(len(np.unique(pred[labels == c])) == 1 for c in range(3))
  assert family.sample(state, jax.random.key(0), 7).shape == (7, 2)
  assert family.encode(state, batch["x"]).shape == (300, 3)


def test_bgmm_family_prunes_components():
  family = registry.build(_config("bgmm_toy"))
  state, history = _run(family, _points(), 40)
  elbo = [h["elbo"] for h in history]
  assert all(b >= a - 1e-4 * abs(a) for a, b in zip(elbo, elbo[1:]))
  assert history[-1]["active_components"] == 3.0
  assert float(jnp.sum(family.weights(state))) == pytest.approx(1.0, abs=1e-5)
  metrics = family.eval_step(state, _points(seed=1), jax.random.key(0))
  assert np.all(np.isfinite(metrics["nll"]))


def test_robust_ppca_family_fits_a_line_despite_outliers():
  family = registry.build(_config("robust_ppca_toy"))
  x, w, _ = synthetic.linear_with_outliers(np.random.default_rng(0), 500, 2, 1, outlier_fraction=0.05, noise=0.05)
  state, history = _run(family, {"x": jnp.asarray(x, jnp.float32)}, 20)
  assert history[-1]["nll"] < history[0]["nll"]
  fitted = np.asarray(state.params["model"]["w"])[:, 0]
  cosine = abs(fitted @ w[:, 0]) / np.linalg.norm(fitted)
  assert cosine > 0.999
