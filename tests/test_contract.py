"""The family contract v2: stateless families built from a data spec, a typed train state, EMA by config,
traced conditions, stacked batches, declared capabilities, finiteness before every checkpoint."""

import os
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import config as config_lib
from jgen import registry
from jgen.data import spec as spec_lib
from jgen.errors import UserError
from jgen.families.vae import VAE
from jgen.family import Family
from jgen.train import checkpoint, loop, sharding
from jgen.train.sampling import Sampler
from tests.helpers import config_path, logged, run_cli

VAE_DIGITS = "configs/vae/conv_digits.py:smoke"


def _load(spec, *overrides):
  return config_lib.load(config_path(spec), list(overrides))


def test_a_fresh_family_samples_and_scores_a_restored_state_without_init(tmp_path):
  workdir = str(tmp_path / "run")
  loop.train(_load(VAE_DIGITS, "train.steps=10", "train.eval_every=0"), workdir, show_progress=False)
  _, _, state = checkpoint.restore_for_inference(workdir)
  config = checkpoint.read_config(workdir)
  fresh = registry.build(config)  # never initialised: its graphdefs come from the data spec
  x = jax.jit(lambda s, r: fresh.sample(s, r, 5))(state, jax.random.key(0))
  assert x.shape == (5, 8, 8, 1) and bool(jnp.all((x >= 0) & (x <= 1)))
  images = jnp.full((4, 8, 8, 1), 0.5)
  lp = jax.jit(fresh.log_prob)(state, images, jax.random.key(1))
  assert lp.shape == (4,) and bool(jnp.all(jnp.isfinite(lp))) and bool(jnp.all(lp < 0))


def test_spec_comes_from_the_dataset_not_from_names():
  image = spec_lib.from_dataset(_load(VAE_DIGITS).data)
  assert (image.kind, image.shape, image.dtype, image.num_classes) == ("image", (8, 8, 1), "uint8", 10)
  assert image.likelihood_space == "continuous_unit"
  points = spec_lib.from_dataset(_load("configs/diffusion/ddpm_toy2d.py:smoke").data)
  assert (points.kind, points.shape, points.likelihood_space) == ("points", (2,), "continuous")
  # uint8 images become [0, 1] floats on the device; floats pass unchanged.
  batch = spec_lib.to_model_input({"x": jnp.array([[0, 255]], jnp.uint8), "label": jnp.array([3])})
  np.testing.assert_array_equal(batch["x"], [[0.0, 1.0]])
  assert spec_lib.to_model_input({"x": jnp.array([0.25])})["x"].dtype == jnp.float32


def test_a_misspelled_key_in_a_config_file_is_one_line_and_exit_2(tmp_path):
  path = tmp_path / "typo.py"
  path.write_text(textwrap.dedent("""
      from jgen.config_schema import experiment

      def get_config(arg="smoke"):
        return experiment(model=dict(name="vae.conv", latnt_dim=2), data=dict(name="digits"), train=dict(steps=2))
  """))
  workdir = tmp_path / "run"
  result = run_cli("train", f"{path}:smoke", "--workdir", str(workdir))
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "model.latnt_dim: no such config key" in lines[0] and "model.latent_dim" in lines[0]
  assert not workdir.exists()
  # A wrong type in a file is the same kind of error.
  path.write_text(path.read_text().replace("latnt_dim=2", "latent_dim='two'"))
  result = run_cli("train", f"{path}:smoke", "--workdir", str(workdir))
  assert result.returncode == 2 and "expected int" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_defaults_fill_every_field_so_families_never_guess():
  config = _load(VAE_DIGITS)
  assert config.optim.ema_decay == 0.0 and config.train.batches_per_step == 1 and config.data.validation_size == -1
  with pytest.raises(UserError, match="no such config key"):
    _load(VAE_DIGITS, "optim.emma_decay=0.9")


@pytest.mark.parametrize("spec,network", [(VAE_DIGITS, "model"), ("configs/gan/dcgan_fashion_mnist.py:smoke", "gen")])
def test_ema_is_switched_on_by_config_and_used_for_sampling(spec, network, tmp_path):
  key = "optim.ema_decay" if network == "model" else "optim.gen.ema_decay"
  config = _load(spec, f"{key}=0.5", "train.evals=''")
  family = registry.build(config)
  batch = spec_lib.to_model_input(family.spec.example_batch(8))
  batch["x"] = jax.random.uniform(jax.random.key(0), batch["x"].shape)
  state = family.init(jax.random.key(0), batch)
  assert list(state.ema) == [network]
  step = jax.jit(family.train_step)
  for i in range(3):
    state, _ = step(state, batch, jax.random.key(i))
  leaf = lambda tree: jax.tree.leaves(tree)[-1]
  assert not np.allclose(leaf(state.ema[network]), leaf(state.params[network]))
  # Sampling uses the EMA: replacing the trained weights by the EMA changes nothing.
  swapped = state.replace(params={**state.params, network: state.ema[network]})
  a = family.sample(state, jax.random.key(5), 4)
  b = family.sample(swapped, jax.random.key(5), 4)
  np.testing.assert_allclose(a, b, rtol=1e-6)
  off = registry.build(_load(spec, "train.evals=''"))
  assert off.init(jax.random.key(0), batch).ema == {}


def test_stacked_batches_equal_one_concatenated_batch(tmp_path):
  base = ["train.steps=6", "train.log_every=1", "train.eval_every=0", "train.ckpt_every=0", "train.eval_batches=1"]
  runs = {}
  for name, extra in (("stacked", ["data.batch_size=8", "train.batches_per_step=3"]), ("one", ["data.batch_size=24"])):
    workdir = str(tmp_path / name)
    loop.train(_load(VAE_DIGITS, *base, *extra), workdir, show_progress=False)
    runs[name] = np.array([v for _, v in logged(workdir, "train/loss")])
  assert len(runs["one"]) == 6
  np.testing.assert_allclose(runs["stacked"], runs["one"], rtol=1e-5)


class _DivergingVAE(VAE):
  """A VAE whose parameters become NaN after step `NAN_AT` (its metrics stay finite that step)."""

  NAN_AT = 7

  def train_step(self, state, batch, rng):
    new, metrics = super().train_step(state, batch, rng)
    poison = jnp.where(new.step >= self.NAN_AT, jnp.nan, 0.0)
    return new.replace(params=jax.tree.map(lambda p: p + poison, new.params)), metrics


registry.register("test.diverging_vae", family="VAE")(_DivergingVAE)


def test_a_nan_between_log_steps_is_never_checkpointed(tmp_path):
  config = config_lib.load(config_path(VAE_DIGITS), ["train.steps=20", "train.log_every=100", "train.eval_every=0",
                                                     "train.ckpt_every=5"])
  config.unlock()
  config.model.name = "test.diverging_vae"
  config.lock()
  workdir = str(tmp_path / "run")
  with pytest.raises(loop.TrainingDiverged, match="last good checkpoint \\(step 5\\)"):
    loop.train(config, workdir, show_progress=False)
  mngr = checkpoint.manager(workdir)
  assert mngr.all_steps() == [5]
  abstract = _abstract(config)
  restored = checkpoint.restore_latest(mngr, lambda data: abstract)
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(restored[1].params))


def _abstract(config):
  runner = loop.Runner(config)
  runner.setup(runner.family.spec.example_batch(config.data.batch_size))
  return runner.abstract_state, runner.state_sharding


def test_sampler_output_is_sharded_over_8_devices_and_equals_1_device():
  assert len(jax.devices()) == 8
  family = registry.build(_load(VAE_DIGITS))
  state = family.init(jax.random.key(0), spec_lib.to_model_input(family.spec.example_batch(4)))
  one = Sampler(family, sharding.make_mesh({"data": -1}, jax.devices()[:1]))
  eight = Sampler(family, sharding.make_mesh({"data": -1}, jax.devices()))
  x1, x8 = one(state, jax.random.key(3), 16), eight(state, jax.random.key(3), 16)
  assert len(x8.sharding.device_set) == 8 and x8.addressable_shards[0].data.shape == (2, 8, 8, 1)
  np.testing.assert_allclose(np.asarray(x8), np.asarray(x1), rtol=1e-5, atol=1e-6)
  # A count that does not divide evenly is drawn whole on every device, with the same numbers.
  np.testing.assert_allclose(np.asarray(eight(state, jax.random.key(3), 5)),
                             np.asarray(one(state, jax.random.key(3), 5)), rtol=1e-5, atol=1e-6)


def test_conditional_ddpm_samples_carry_the_requested_labels():
  """Two-class moons, label-conditional DDPM with guidance: each default-condition sample lies on its label's moon."""
  config = _load("configs/diffusion/ddpm_toy2d.py:smoke", "model.label_conditional=True", "model.p_uncond=0.1",
                 "model.guidance=2.0", "model.hidden=128", "optim.lr=3e-3", "data.batch_size=256",
                 "model.sample_steps=20")
  family = registry.build(config)
  assert family.conditions == ("label", "guidance")
  from jgen.data import sources
  from jgen.eval.suite import load_split

  x, labels = load_split("toy2d_moons", "train", limit=20_000)
  state = family.init(jax.random.key(0), {"x": jnp.asarray(x[:256]), "label": jnp.asarray(labels[:256])})
  step = jax.jit(family.train_step)
  rng = np.random.default_rng(0)
  for i in range(1500):
    idx = rng.integers(0, len(x), 256)
    state, _ = step(state, {"x": jnp.asarray(x[idx]), "label": jnp.asarray(labels[idx])}, jax.random.key(i))
  sampler = Sampler(family)
  cond = family.default_cond(jax.random.key(0), 200)
  np.testing.assert_array_equal(cond["label"][:4], [0, 1, 0, 1])
  samples = np.asarray(sampler(state, jax.random.key(1), 200, cond))
  # The label of each sample's nearest training point.
  d = ((samples[:, None, :] - x[None, :5000]) ** 2).sum(-1)
  nearest = labels[:5000][d.argmin(1)]
  assert (nearest == np.asarray(cond["label"])).mean() > 0.9
  # A single requested label: every sample on that moon.
  ones = np.asarray(sampler(state, jax.random.key(2), 100, {"label": jnp.ones(100, jnp.int32)}))
  d = ((ones[:, None, :] - x[None, :5000]) ** 2).sum(-1)
  assert (labels[:5000][d.argmin(1)] == 1).mean() > 0.9


def test_the_loop_checks_the_main_metric_at_setup(tmp_path):
  class _Unranked(VAE):
    main_metric = "sharpness"

  registry.register("test.unranked_vae", family="VAE")(_Unranked)
  config = _load(VAE_DIGITS)
  config.unlock()
  config.model.name = "test.unranked_vae"
  config.lock()
  with pytest.raises(UserError, match="main metric 'sharpness'"):
    loop.train(config, str(tmp_path / "run"), show_progress=False)
  # An implicit model ranks by an in-loop evaluator's metric: FID-FMNIST.
  gan = registry.build(_load("configs/gan/dcgan_fashion_mnist.py:smoke"))
  assert (gan.main_metric, gan.best_mode) == ("fid_fmnist", "min")
  unranked = registry.build(_load("configs/gan/dcgan_fashion_mnist.py:smoke", "train.evals=''"))
  assert unranked.best_mode is None


def test_declared_capabilities_are_checked_at_registration():
  class _NoDecoder(Family):
    latents = True

    def sample(self, state, rng, n, cond=None):
      return jnp.zeros((n, 2))

  with pytest.raises(TypeError, match="declares latents but defines no encode/decode"):
    registry.register("test.no_decoder", family="VAE")(_NoDecoder)

  class _NoLikelihood(Family):
    likelihood = "exact"

    def sample(self, state, rng, n, cond=None):
      return jnp.zeros((n, 2))

  with pytest.raises(TypeError, match="declares a likelihood but defines no log_density"):
    registry.register("test.no_likelihood", family="VAE")(_NoLikelihood)


def test_a_broken_family_module_breaks_only_its_own_models(tmp_path, monkeypatch):
  import jgen.families as pkg

  (tmp_path / "broken_family.py").write_text("raise ImportError('a missing dependency')\n")
  monkeypatch.setattr(pkg, "__path__", list(pkg.__path__) + [str(tmp_path)])
  monkeypatch.setattr(registry, "_loaded", False)
  monkeypatch.setattr(registry, "_BROKEN", {})
  assert "vae.conv" in registry.models()
  assert "a missing dependency" in registry.broken_modules()["jgen.families.broken_family"]
  with pytest.raises(UserError, match="failed to import"):
    registry.lookup("no_such.model")
  monkeypatch.delitem(sys.modules, "jgen.families.broken_family", raising=False)
