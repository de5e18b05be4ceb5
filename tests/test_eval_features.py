"""The shipped FID-FMNIST classifier on the real Fashion-MNIST test set, and its family and config."""

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.errors import UserError

from jgen import registry
from jgen.data.builders import read_fashion_mnist
from jgen.eval import features, frechet

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "configs", "eval", "fmnist_classifier.py")


def _get_config(arg):
  from jgen import config as config_lib

  return config_lib.load(f"{CONFIG_PATH}:{arg}")


@pytest.fixture(scope="module")
def test_set():
  images, labels = read_fashion_mnist("test")
  return images.astype(np.float32) / 255.0, labels.astype(np.int32)


def test_shipped_classifier_reaches_93_percent_on_the_real_test_set(test_set):
  x, y = test_set
  assert len(x) == 10000
  net = features.load_feature_network()
  accuracy = float((net.logits(x).argmax(1) == y).mean())
  assert accuracy >= 0.93, accuracy
  assert os.path.getsize(features.ASSET_PATH) < 1_000_000


def test_features_are_per_image_and_separate_real_from_corrupted(test_set):
  x, _ = test_set
  net = features.load_feature_network()
  f = net(x[:1200])
  assert f.shape == (1200, net.feature_dim) and f.dtype == np.float32
  # batch statistics are frozen: an image's features do not depend on its batch-mates
  np.testing.assert_allclose(net(x[700:703]), f[700:703], rtol=1e-5, atol=1e-5)
  assert frechet.frechet_distance_of_features(f, f) < 1e-6
  halves = frechet.frechet_distance_of_features(f[:600], f[600:])
  noisy = net(np.clip(x[600:1200] + 0.3 * np.random.default_rng(0).normal(size=x[600:1200].shape), 0, 1))
  assert halves < frechet.frechet_distance_of_features(f[:600], noisy) / 5


def test_family_contract_and_export_round_trip(tmp_path, test_set):
  x, y = test_set
  config = _get_config("smoke")
  entry = registry.lookup(config.model.name)
  assert entry.family == "feature network"
  family = registry.build(config)
  assert not family.generative  # a Model the loop trains, not a Family: no sample, no likelihood
  batch = {"x": jnp.asarray(x[:32]), "label": jnp.asarray(y[:32])}
  state = family.init(jax.random.key(0), batch)
  step = jax.jit(family.train_step)
  losses = []
  for i in range(8):  # one batch again and again: the loss must fall
    state, metrics = step(state, batch, jax.random.key(i))
    losses.append(float(metrics["loss"]))
  assert losses[-1] < losses[0]
  ev = family.eval_step(state, batch, jax.random.key(0))
  assert ev["accuracy"].shape == (32,) and ev["loss"].shape == (32,)
  logits = family.network(state)(batch["x"])
  np.testing.assert_allclose(ev["loss"], -jax.nn.log_softmax(logits)[jnp.arange(32), batch["label"]], rtol=1e-5)
  assert not hasattr(family, "sample") and not hasattr(family, "log_prob")
  path = features.export_feature_network(state, config.model, str(tmp_path / "net.npz"))
  net = features.load_feature_network_from(path, batch_size=16)
  np.testing.assert_allclose(net(x[:40]), family.features(state, jnp.asarray(x[:40])), rtol=1e-5, atol=1e-6)


def test_shipped_asset_is_one_full_run_of_the_config():
  # The asset must be reproducible by `jgen train configs/eval/fmnist_classifier.py:full`:
  # its network is the full config's and it holds the weights of that run's last step.
  full = _get_config("full")
  info = features.load_feature_network().info
  assert info["model"] == json.loads(json.dumps(full.model.to_dict()))
  assert info["step"] == info["train_steps"] == full.train.steps
  assert info["test_accuracy"] >= 0.93


def test_config_variants():
  full, smoke = _get_config("full"), _get_config("smoke")
  assert full.model.name == smoke.model.name == "classifier.fmnist"
  assert full.model.augment and full.model.convs_per_stage == 2
  assert full.data.name == "fashion_mnist" and isinstance(full.optim.lr, float)
  assert smoke.train.steps < full.train.steps
  with pytest.raises(UserError, match="unknown variant"):
    _get_config("medium")
