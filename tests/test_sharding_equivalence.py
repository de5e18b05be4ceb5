"""20 steps on 1 device and on 8 CPU devices (data-parallel mesh) log the same losses."""

import jax
import numpy as np
import pytest

from jgen import config as config_lib
from jgen.train import loop
from tests.helpers import config_path, logged

CASES = {
    "vae": ("configs/vae/conv_fashion_mnist.py:smoke", ["train/loss", "train/kl"]),
    "dcgan": ("configs/gan/dcgan_fashion_mnist.py:smoke", ["train/d_loss", "train/g_loss"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_vs_eight_devices(name, tmp_path):
  assert len(jax.devices()) == 8, "tests/conftest.py asks for 8 CPU devices"
  spec, keys = CASES[name]
  overrides = ["train.steps=20", "train.log_every=1", "train.eval_every=0", "train.ckpt_every=0", "train.eval_batches=1"]
  curves = {}
  for n in (1, 8):
    config = config_lib.load(config_path(spec), overrides)
    workdir = str(tmp_path / f"dev{n}")
    loop.train(config, workdir, show_progress=False, devices=jax.devices()[:n])
    curves[n] = {k: np.array([v for _, v in logged(workdir, k)]) for k in keys}
  for k in keys:
    assert len(curves[1][k]) == 20
    np.testing.assert_allclose(curves[8][k], curves[1][k], rtol=2e-4, atol=2e-4, err_msg=k)
    assert not np.allclose(curves[1][k], curves[1][k][0]), "losses must change, or the comparison is empty"
