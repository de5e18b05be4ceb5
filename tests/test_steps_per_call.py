"""`train.steps_per_call = s`: s steps in one jitted scan give the results of s single steps, including
stretches cut short by log / checkpoint steps, stacked n-critic batches, and a resume under another s."""

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jgen import config as config_lib
from jgen.train import loop
from tests.helpers import config_path, logged

STEPS = 12


def _train(spec, workdir, steps_per_call, steps=STEPS, extra=()):
  overrides = [f"train.steps={steps}", "train.log_every=3", "train.eval_every=0", "train.ckpt_every=6",
               "train.sample_num=0", "train.evals=''", f"train.steps_per_call={steps_per_call}", *extra]
  loop.train(config_lib.load(config_path(spec), overrides), str(workdir), show_progress=False)


def _params(workdir, step):
  return jax.tree.leaves(ocp.StandardCheckpointer().restore(f"{workdir}/checkpoints/{step}/state"))


def _assert_same(a_dir, b_dir, key):
  a, b = logged(a_dir, key), logged(b_dir, key)
  assert [s for s, _ in a] == [s for s, _ in b] == list(range(3, STEPS + 1, 3))
  np.testing.assert_allclose([v for _, v in a], [v for _, v in b], rtol=1e-5)
  pa, pb = _params(a_dir, STEPS), _params(b_dir, STEPS)
  assert len(pa) == len(pb) > 0
  for x, y in zip(pa, pb):
    # XLA:CPU's Eigen convolutions (jgen/train/compile_options.py) round a scan body's convolutions differently
    # from a single step's. Adam divides each entry's step by its own gradient scale, so an entry whose gradient
    # is a near-cancelling sum can carry such a rounding into a fraction of a step: in the WGAN-GP run, 1 of
    # the generator's 100,352 dense weights ended 1.8e-5 apart (its smoke lr is 1e-3) while every other entry
    # agreed to 5e-6. So: all but 1 in 10,000 entries within 5e-6, and every entry within 1e-4 (a tenth of
    # that lr).
    x, y = np.asarray(x), np.asarray(y)
    far = ~np.isclose(x, y, rtol=1e-5, atol=5e-6)
    assert far.sum() <= x.size // 10_000, (far.sum(), x.shape, np.abs(x - y).max())
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-4)


VAE = "configs/vae/conv_digits.py:smoke"


@pytest.fixture(scope="module")
def single_vae(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("single_vae")
  _train(VAE, workdir, 1)
  return workdir


def test_scanned_steps_equal_single_steps(single_vae, tmp_path):
  # log every 3 steps, s = 2: scans of 2 and single steps before each log step
  _train(VAE, tmp_path / "scanned", 2)
  _assert_same(single_vae, tmp_path / "scanned", "train/loss")


def test_scanned_stacked_critic_batches(tmp_path):
  # two stacked critic batches a step: one call's batches are [s, k, B, ...]; s = 3 fills each log interval
  extra = ("train.batches_per_step=2",)
  _train("configs/gan/wgan_gp_fashion_mnist.py:smoke", tmp_path / "single", 1, extra=extra)
  _train("configs/gan/wgan_gp_fashion_mnist.py:smoke", tmp_path / "scanned", 3, extra=extra)
  _assert_same(tmp_path / "single", tmp_path / "scanned", "train/g_loss")


def test_resume_under_another_steps_per_call(single_vae, tmp_path):
  _train(VAE, tmp_path / "resumed", 2, steps=STEPS // 2)
  _train(VAE, tmp_path / "resumed", 3)  # train.* may change on resume
  _assert_same(single_vae, tmp_path / "resumed", "train/loss")


def test_calls_are_planned_around_events(tmp_path, monkeypatch):
  """The steps each call runs: scans between events, single steps where an event comes sooner."""
  sizes = []
  run = loop.Runner.run

  def recording(self, state, placed, first_bad):
    sizes.append(placed[0])
    return run(self, state, placed, first_bad)

  monkeypatch.setattr(loop.Runner, "run", recording)
  _train(VAE, tmp_path / "w", 2, steps=7, extra=("train.log_every=3",))
  # events at 3 and 6 (log) and 6 (ckpt) and 7 (end): 1-2 scanned, 3, 4-5 scanned, 6, 7
  assert sizes == [2, 1, 2, 1, 1]
