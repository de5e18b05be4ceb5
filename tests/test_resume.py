"""2N steps straight equal N steps, a new process, N more steps on the same workdir:
identical final parameters and identical logged losses."""

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.helpers import config_path, logged, run_cli

N = 8
CASES = {
    "vae": ("configs/vae/conv_digits.py:smoke", "train/loss"),
    "dcgan": ("configs/gan/dcgan_fashion_mnist.py:smoke", "train/g_loss"),
    # Two optimizers, two critic updates a step, the generator's EMA and the critic's spectral-norm vectors.
    "wgan_gp": ("configs/gan/wgan_gp_fashion_mnist.py:smoke", "train/g_loss",
                ("optim.gen.ema_decay=0.9", "model.spectral_norm=True", "train.evals=''")),
}


def _train(spec, workdir, steps, extra=()):
  sets = [arg for s in extra for arg in ("--set", s)]
  result = run_cli("train", config_path(spec), "--workdir", workdir, "--quiet", "--set", f"train.steps={steps}",
                   "--set", "train.log_every=1", "--set", f"train.ckpt_every={N}", "--set", f"train.eval_every={N}",
                   *sets)
  assert result.returncode == 0, result.stderr[-3000:]


def _params(workdir, step):
  restored = ocp.StandardCheckpointer().restore(f"{workdir}/checkpoints/{step}/state")
  return jax.tree.leaves(restored)


@pytest.mark.parametrize("name", sorted(CASES))
def test_resume_matches_uninterrupted(name, tmp_path):
  spec, key, *extra = CASES[name]
  extra = extra[0] if extra else ()
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  _train(spec, straight, 2 * N, extra)
  _train(spec, resumed, N, extra)
  _train(spec, resumed, 2 * N, extra)  # a new process, same workdir: resumes at step N
  assert logged(resumed, key) == logged(straight, key)
  assert [s for s, _ in logged(resumed, key)] == list(range(1, 2 * N + 1))
  a, b = _params(straight, 2 * N), _params(resumed, 2 * N)
  assert len(a) == len(b) > 0
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert not np.array_equal(np.asarray(_params(straight, N)[-1]), np.asarray(a[-1])), "params must move"
