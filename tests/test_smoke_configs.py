"""Every config's `smoke` variant trains on its real data and its training loss goes down."""

import glob
import os

import numpy as np
import pytest

from jgen import config as config_lib
from jgen import registry
from jgen.train import loop
from tests.helpers import REPO, logged

CONFIGS = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "configs", "**", "*.py"), recursive=True))


def test_configs_exist():
  assert "configs/vae/conv_fashion_mnist.py" in CONFIGS
  assert "configs/gan/dcgan_fashion_mnist.py" in CONFIGS


@pytest.mark.parametrize("rel", CONFIGS)
def test_smoke_variant_trains_and_loss_falls(rel, tmp_path):
  config = config_lib.load(os.path.join(REPO, rel) + ":smoke", ["train.log_every=1"])
  full = config_lib.load(os.path.join(REPO, rel) + ":full")
  assert full.train.steps > config.train.steps, "the full variant is the real run"
  workdir = str(tmp_path / "run")
  metrics = loop.train(config, workdir, show_progress=False)
  family = registry.lookup(config.model.name).cls
  curve = np.array([v for _, v in logged(workdir, f"train/{family.progress_metric}")])
  assert len(curve) == config.train.steps
  assert np.all(np.isfinite(curve))
  k = max(len(curve) // 5, 1)
  assert curve[-k:].mean() < curve[:k].mean(), f"{family.progress_metric} did not fall: {curve}"
  assert any(key.startswith("eval/") for key in metrics)
