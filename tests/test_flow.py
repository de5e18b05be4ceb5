"""Normalizing flows: every layer and whole model inverts exactly (float32 and float64), log-determinants equal
slogdet of the brute-force Jacobian, the LU 1x1 convolution's log-det equals slogdet of its weight, ActNorm's
data-dependent init (and no re-init on resume), a 2-D density that integrates to one, the closed-form Gaussian
of affine-only flows, temperature and latents, bad config values in one line."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from jgen import config as config_lib
from jgen import registry
from jgen.data.spec import DataSpec
from jgen.errors import UserError
from jgen.nn.flows.actnorm import ActNorm
from jgen.nn.flows.coupling import Coupling
from jgen.nn.flows.dequantize import VariationalDequantizer
from jgen.nn.flows.invconv import InvConv1x1
from jgen.nn.flows.logit import Center, Logit
from jgen.nn.flows.multiscale import SplitPrior
from jgen.nn.flows.squeeze import Squeeze
from jgen.train import checkpoint, loop
from tests.helpers import config_path, logged

TOY = config_path("configs/flow/realnvp_toy2d.py") + ":smoke"
REALNVP = config_path("configs/flow/realnvp_fashion_mnist.py") + ":smoke"
GLOW = config_path("configs/flow/glow_fashion_mnist.py") + ":smoke"
IMAGE = (4, 4, 1)  # two scales of both architectures fit: 4x4x1 -> 2x2x4 (-> 1x1x8)


def _randomized(tree, scale, seed):
  """Every float leaf moved off its initial value (zero-initialised networks would make couplings the identity)."""
  rng = np.random.default_rng(seed)  # numpy: no compilation per leaf shape
  return jax.tree.map(lambda a: jnp.asarray(np.asarray(a) + scale * rng.standard_normal(a.shape).astype(a.dtype)),
                      tree)


def _randomize_module(module, scale=0.2, seed=0):
  graphdef, params = nnx.split(module)
  return nnx.merge(graphdef, _randomized(params, scale, seed))


def _as(tree, dtype):
  return jax.tree.map(lambda a: jnp.asarray(np.asarray(a).astype(dtype)) if jnp.issubdtype(a.dtype, jnp.floating)
                      else a, tree)


def _brute_logdet(fn, x):
  """log |det| of the Jacobian of x -> fn(x) for one example x [1, ...], flattened, by forward-mode autodiff."""
  flat = lambda v: fn(v.reshape(x.shape)).reshape(-1)
  sign, logdet = jax.jit(lambda v: jnp.linalg.slogdet(jax.jacfwd(flat)(v)))(x.reshape(-1))
  assert float(sign) != 0.0
  return float(logdet)


# ---- layers ---------------------------------------------------------------------------------------------------
def _layers():
  rngs = nnx.Rngs(0)
  image, vector = (2, 2, 4), (3,)
  ctx = jax.random.normal(jax.random.key(9), (3, 2, 2, 3))  # a batch of 3
  return {
      "checkerboard_affine_sigmoid": (Coupling(image, "checkerboard", 0, scale="sigmoid", features=8, rngs=rngs),
                                      image, None),
      "checkerboard_affine_tanh": (Coupling(image, "checkerboard", 1, scale="tanh", features=8, rngs=rngs), image, None),
      "checkerboard_additive": (Coupling(image, "checkerboard", 0, kind="additive", features=8, rngs=rngs), image, None),
      "checkerboard_with_context": (Coupling(image, "checkerboard", 1, scale="tanh", features=8, ctx_channels=3,
                                             rngs=rngs), image, ctx),
      "channel_affine_parity0": (Coupling(image, "channel", 0, features=8, rngs=rngs), image, None),
      "channel_affine_parity1": (Coupling(image, "channel", 1, scale="tanh", features=8, rngs=rngs), image, None),
      "channel_additive": (Coupling(image, "channel", 1, kind="additive", features=8, rngs=rngs), image, None),
      "vector_coupling": (Coupling(vector, "channel", 1, scale="tanh", features=8, num_blocks=2, rngs=rngs), vector,
                          None),
      "actnorm": (ActNorm(4), image, None),
      "invconv": (InvConv1x1(4, seed=3), image, None),
      "invconv_vector": (InvConv1x1(3, seed=4), vector, None),
      "squeeze": (Squeeze(), image, None),
      "logit": (Logit(0.05), image, None),
      "center": (Center(), image, None),
      "split_prior": (SplitPrior(3, 4, rngs=rngs), image, ctx),
  }


LAYERS = _layers()


def _layer_input(name, shape, batch=2, dtype=jnp.float32):
  x = jax.random.normal(jax.random.key(1), (batch,) + shape, dtype)
  return jax.nn.sigmoid(x) if name == "logit" else x  # the logit's domain is (0, 1)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_logdet_equals_slogdet_of_its_jacobian(name):
  layer, shape, ctx = LAYERS[name]
  layer = _randomize_module(layer, 0.3, seed=len(name))
  x = _layer_input(name, shape, batch=1)
  ctx = None if ctx is None else ctx[:1]
  _, logdet = layer.forward(x, ctx)
  np.testing.assert_allclose(float(logdet[0]), _brute_logdet(lambda v: layer.forward(v, ctx)[0], x), atol=2e-4,
                             rtol=1e-4)
  if "additive" in name or name in ("squeeze", "center"):
    assert float(logdet[0]) == 0.0  # volume preserving


def test_every_layer_inverts_exactly():
  """In float32 here; every layer type also inverts in float64 inside the whole models below."""
  for name, (layer, shape, c) in sorted(LAYERS.items()):
    layer = _randomize_module(layer, 0.3, seed=len(name))
    x = _layer_input(name, shape, batch=3)
    z, logdet = layer.forward(x, c)
    assert logdet.shape == (3,), name
    np.testing.assert_allclose(layer.inverse(z, c), x, atol=2e-5, rtol=2e-5, err_msg=name)
    z2 = _layer_input(name, z.shape[1:], batch=3)
    np.testing.assert_allclose(layer.forward(layer.inverse(z2, c), c)[0], z2, atol=2e-5, rtol=2e-5, err_msg=name)


def test_lu_invconv_logdet_is_slogdet_of_its_weight_and_starts_as_a_rotation():
  conv = InvConv1x1(6, seed=1)
  w0 = np.asarray(conv.weight())
  np.testing.assert_allclose(w0 @ w0.T, np.eye(6), atol=1e-5)  # P L U reassembles the random rotation
  conv = _randomize_module(conv, 0.5, seed=2)
  x = jax.random.normal(jax.random.key(0), (2, 3, 5, 6))
  _, sign_logdet = jnp.linalg.slogdet(conv.weight())
  _, logdet = conv.forward(x)
  np.testing.assert_allclose(logdet, 15 * float(sign_logdet), rtol=1e-5)  # H * W positions
  np.testing.assert_allclose(conv.forward(x)[0], jnp.einsum("bhwj,ij->bhwi", x, conv.weight()), atol=1e-5)


def test_actnorm_init_gives_zero_mean_unit_variance_per_channel():
  x = 3.0 + jnp.array([0.5, 2.0, 7.0]) * jax.random.normal(jax.random.key(0), (16, 5, 5, 3))
  norm = ActNorm(3)
  z, logdet = norm.initialize(x)
  np.testing.assert_allclose(z.mean((0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(z.std((0, 1, 2)), 1.0, atol=1e-4)
  np.testing.assert_allclose(logdet, -25 * jnp.sum(jnp.log(x.std((0, 1, 2)))), rtol=1e-5)
  z2, _ = norm.forward(x)  # the parameters were set, not just this output
  np.testing.assert_allclose(z2, z, atol=1e-6)


# ---- whole models ---------------------------------------------------------------------------------------------
def _family(config_file, shape, *overrides, kind="image", num_classes=10):
  config = config_lib.load(config_file, list(overrides))
  space = "continuous_unit" if kind == "image" else "continuous"
  spec = DataSpec(kind=kind, shape=shape, dtype="uint8" if kind == "image" else "float32", num_classes=num_classes,
                  likelihood_space=space)
  return registry.build(config, spec)


def _batch(family, n=8, seed=0):
  key = jax.random.key(seed)
  if family.is_image:
    x = jnp.round(jax.random.uniform(key, (n,) + family.spec.shape) * 255) / 255
  else:
    x = jax.random.normal(key, (n,) + family.spec.shape) * jnp.array([1.0, 0.5]) + jnp.array([0.5, -1.0])
  return {"x": x, "label": jnp.arange(n, dtype=jnp.int32) % max(family.spec.num_classes, 1)}


def _trained_like(family, scale=0.1, seed=1):
  """A state initialised on a batch, its parameters randomized as training would move them."""
  state = family.init(jax.random.key(0), _batch(family))
  return state.replace(params=_randomized(state.params, scale, seed))


MODELS = {  # every layer type, both architectures, both data kinds, the options that change the network
    "realnvp_image_sigmoid_split_prior": (REALNVP, IMAGE, ["model.scale=sigmoid", "model.learned_split_prior=True"]),
    "glow_image_center_labels": (GLOW, IMAGE, ["model.preprocess=center", "model.label_conditional=True"]),
    "realnvp_additive_variational_dequantization": (REALNVP, IMAGE, ["model.coupling=additive",
                                                                     "model.dequantization=variational",
                                                                     "model.deq_steps=1", "model.deq_features=4"]),
    "realnvp_points": (TOY, (2,), []),
    "glow_points": (GLOW, (2,), ["model.num_scales=1", "model.num_steps=3", "model.scale=sigmoid"]),
}


def _model(name):
  config_file, shape, overrides = MODELS[name]
  return _family(config_file, shape, *overrides, kind="image" if len(shape) == 3 else "points")


def _model_input(family, n=4, seed=3, dtype=jnp.float32):
  x = _batch(family, n, seed)["x"]
  if family.is_image:  # dequantized pixels, the data a flow's density is of
    x = family.prepare_data(x, jax.random.key(seed))
  return x.astype(dtype)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_whole_model_logdet_is_slogdet_of_its_jacobian_and_it_inverts_exactly(name):
  """x -> z -> x and z -> x -> z to float tolerance in float32 and float64 (encode / decode), and log |det dz/dx|
  of the whole network (preprocessing, squeezes, splits and their priors) against the brute-force Jacobian.
  Between them the models hold every layer type: couplings (checkerboard and channel; affine with either scale,
  additive), ActNorm, LU 1x1 convolutions, squeezes, logit and centring, learned split priors."""
  family = _model(name)
  state = _trained_like(family)
  net = family.network(state)
  x = _model_input(family, n=1)
  _, logdet = jax.jit(net.forward)(x)
  np.testing.assert_allclose(float(logdet[0]), _brute_logdet(lambda v: net.forward(v)[0], x), atol=5e-3, rtol=2e-5)
  for dtype, tol in ((jnp.float32, 1e-4), (jnp.float64, 1e-10)):
    with jax.enable_x64(dtype == jnp.float64):
      s = _as(state, dtype)
      x = _model_input(family, dtype=dtype)
      z2 = 0.7 * jax.random.normal(jax.random.key(5), (4, family.spec.dims), dtype)
      z, x_again, z2_again = jax.jit(lambda s, x, z2: (family.encode(s, x), family.decode(s, family.encode(s, x)),
                                                       family.encode(s, family.decode(s, z2))))(s, x, z2)
      assert z.shape == (4, family.spec.dims) and z.dtype == dtype
      np.testing.assert_allclose(x_again, x, atol=tol, rtol=tol)
      np.testing.assert_allclose(z2_again, z2, atol=10 * tol, rtol=10 * tol)


def test_variational_dequantizer_density_is_its_jacobian_and_stays_in_the_cell():
  deq = _randomize_module(VariationalDequantizer((2, 2, 1), 2, 4, rngs=nnx.Rngs(0)), 0.3, seed=4)
  x = jnp.round(jax.random.uniform(jax.random.key(0), (1, 2, 2, 1)) * 255) / 255
  eps = jax.random.normal(jax.random.key(1), x.shape)
  _, logdet = deq.transform(eps, x)
  np.testing.assert_allclose(float(logdet[0]), _brute_logdet(lambda e: deq.transform(e, x)[0], eps), atol=2e-4)
  x_deq, _ = deq(jnp.repeat(x, 64, 0), jax.random.key(2))
  cell = jnp.floor(x_deq * 256)
  np.testing.assert_array_equal(cell, jnp.broadcast_to(jnp.round(x * 255), cell.shape))


def test_toy_density_integrates_to_one():
  """Grid quadrature of exp(log p) over a box that holds the mass (the flow's own samples say it does)."""
  family = _model("realnvp_points")
  state = _trained_like(family, scale=0.15, seed=3)
  samples = family.sample(state, jax.random.key(0), 20_000)
  assert float(jnp.mean(jnp.max(jnp.abs(samples), 1) < 7.0)) > 0.9995
  grid = np.linspace(-7.0, 7.0, 351)
  xx, yy = np.meshgrid(grid, grid)
  points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
  log_p = jax.jit(lambda p: family.log_density(state, p, jax.random.key(0)))(points)
  mass = float(jnp.sum(jnp.exp(log_p))) * (grid[1] - grid[0]) ** 2
  assert abs(mass - 1.0) < 2e-3, mass
  assert float(jnp.max(log_p)) > float(stats.norm.logpdf(0.0) * 2) + 0.2, "a standard normal would make this weak"


def test_affine_only_flow_is_the_gaussian_fitted_to_the_init_batch():
  """RealNVP on points with ActNorm and the tanh scale starts as ActNorm alone (zero-initialised couplings):
  the density is the Gaussian with the init batch's per-coordinate mean and standard deviation."""
  family = _model("realnvp_points")
  batch = _batch(family, n=64)
  state = family.init(jax.random.key(0), batch)
  x = jax.random.normal(jax.random.key(7), (10, 2)) * 2.0
  mean, std = np.asarray(batch["x"]).mean(0), np.asarray(batch["x"]).std(0)
  expected = stats.norm.logpdf(np.asarray(x), mean, std).sum(1)
  np.testing.assert_allclose(family.log_density(state, x, jax.random.key(0)), expected, rtol=1e-4)


def test_rotation_only_glow_scores_images_as_the_standard_gaussian():
  """Glow without ActNorm, with tanh scales and no learned priors, starts as squeezes, rotations (the 1x1
  convolutions) and identity couplings after x - 0.5: log p(x) = sum log N(x - 0.5; 0, 1), and bits/dim
  follow the convention nll / (D ln 2) + 8."""
  family = _family(GLOW, IMAGE, "model.actnorm=False", "model.scale=tanh", "model.learned_split_prior=False",
                   "model.preprocess=center", "model.num_steps=2")
  state = family.init(jax.random.key(0), _batch(family))
  x = _model_input(family)
  expected = stats.norm.logpdf(np.asarray(x) - 0.5).reshape(4, -1).sum(1)
  np.testing.assert_allclose(family.log_density(state, x, jax.random.key(0)), expected, rtol=1e-5)
  metrics = family.eval_step(state, {"x": x, "label": jnp.zeros(4, jnp.int32)}, jax.random.key(1))
  np.testing.assert_allclose(metrics["bits_per_dim"], metrics["nll"] / (16 * math.log(2)) + 8, rtol=1e-6)


def test_label_conditional_likelihood_marginalises_the_label():
  family = _model("glow_image_center_labels")
  state = _trained_like(family, scale=0.3)
  x = _model_input(family)
  per_class = jnp.stack([family.log_density(state, x, None, jnp.full((4,), y)) for y in range(10)])
  np.testing.assert_allclose(family.log_density(state, x, None), jax.nn.logsumexp(per_class, 0) - math.log(10),
                             rtol=1e-5)
  assert float(jnp.std(per_class[:, 0])) > 1e-3, "the class means must differ for the test to mean anything"


@pytest.mark.parametrize("name", ["glow_points", "glow_image_center_labels"])
def test_temperature_scales_the_latent(name):
  family = _model(name)
  state = _trained_like(family, scale=0.2)
  net = family.network(state)
  n = 2000 if not family.is_image else 8
  label = None if not family.num_classes else {"label": jnp.full((n,), 3)}
  mean = net.prior_mean(None if label is None else label["label"], n)
  # Temperature 0: deterministic, the decoded mean latent.
  x0 = family.sample(state, jax.random.key(1), n, label, temperature=0.0)
  np.testing.assert_array_equal(x0, family.sample(state, jax.random.key(2), n, label, temperature=0.0))
  decoded = family.decode(state, mean)
  np.testing.assert_allclose(x0, jnp.clip(decoded, 0, 1) if family.is_image else decoded, atol=1e-6)
  if family.is_image:
    return
  z1 = family.encode(state, family.sample(state, jax.random.key(3), n, temperature=1.0))
  z_half = family.encode(state, family.sample(state, jax.random.key(3), n, temperature=0.5))
  np.testing.assert_allclose(z_half, 0.5 * z1, atol=1e-4)  # the same noise, half the latent
  assert abs(float(jnp.std(z_half)) - 0.5) < 0.02 and abs(float(jnp.std(z1)) - 1.0) < 0.04


def test_actnorm_layers_deep_in_a_glow_level_are_normalised_on_the_init_batch():
  family = _family(GLOW, (8, 8, 1), "model.num_steps=3", "model.num_scales=2")
  net = family.make_networks(nnx.Rngs(0))["model"]
  x = _model_input(family, n=32)
  net.initialize(x)
  h, _ = net.preprocess.forward(x)
  seen = 0
  for layer in net.levels[0].flow.layers:
    h, _ = layer.forward(h)
    if isinstance(layer, ActNorm):
      np.testing.assert_allclose(h.mean((0, 1, 2)), 0.0, atol=1e-4)
      np.testing.assert_allclose(h.std((0, 1, 2)), 1.0, atol=1e-3)
      seen += 1
  assert seen == 3


def test_actnorm_is_not_reinitialised_on_resume(tmp_path):
  """3 + 3 steps on one workdir (the second run restores the checkpoint) equal 6 steps straight, parameters and
  losses: a resumed run that set its ActNorms from its first batch again would differ. (Glow on 2-D points:
  the same ActNorm path as on images, at a fraction of the compile time.)"""
  overrides = ["data.name=toy2d_moons", "model.num_scales=1", "model.num_steps=2", "data.batch_size=64",
               "data.eval_batch_size=256", "train.log_every=1", "train.eval_every=3", "train.ckpt_every=3",
               "train.eval_batches=1", "train.sample_num=0"]
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  device = jax.devices()[:1]
  final = {}
  for workdir, stops in ((straight, (6,)), (resumed, (3, 6))):
    for steps in stops:
      loop.train(config_lib.load(GLOW, overrides + [f"train.steps={steps}"]), workdir, show_progress=False,
                 devices=device)
    final[workdir] = checkpoint.restore_for_inference(workdir)[2]
  assert logged(straight, "train/loss") == logged(resumed, "train/loss")
  a, b = (jax.tree.leaves(final[w].params) for w in (straight, resumed))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("config_file,overrides,message", [
    (GLOW, ["model.coupling=affin"], "choose one of affine, additive"),
    (GLOW, ["model.num_scales=3"], "must be divisible by 8"),
    (REALNVP, ["model.logit_alpha=0.5"], "must be in (0, 0.5)"),
    (TOY, ["model.num_scales=2"], "points have one scale"),
    (TOY, ["model.dequantization=variational"], "dequantization is for 8-bit images"),
    (REALNVP, ["model.num_steps=0"], "must be >= 1"),
])
def test_bad_values_are_one_line(config_file, overrides, message):
  with pytest.raises(UserError) as e:
    registry.build(config_lib.load(config_file, overrides))
  assert message in str(e.value) and "\n" not in str(e.value)
