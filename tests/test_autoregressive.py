"""PixelCNN and Gated PixelCNN: causal masks (by gradients), no blind spot, heads that are distributions,
exact likelihoods that sum to one over every image, and samplers that draw from the modelled distribution."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen import config as config_lib
from jgen import registry
from jgen.data.spec import DataSpec
from jgen.nn import pixel_heads as heads
from jgen.nn.masked import causal_mask
from tests.helpers import config_path

PIXELCNN = config_path("configs/autoregressive/pixelcnn_fashion_mnist.py") + ":smoke"
GATED = config_path("configs/autoregressive/gated_pixelcnn_fashion_mnist.py") + ":smoke"


def _family(config_file, shape, head, *overrides, components=3):
  config = config_lib.load(config_file, [f"model.head={head}", f"model.components={components}", *overrides])
  spec = DataSpec(kind="image", shape=shape, dtype="uint8", num_classes=10)
  family = registry.build(config, spec)
  state = family.init(jax.random.key(0), {"x": jnp.zeros((2,) + shape), "label": jnp.zeros((2,), jnp.int32)})
  return family, state


def _randomized(state, scale, seed=1):
  """Parameters pushed far from initialisation, so the tested distributions are not near-uniform."""
  leaves, tree = jax.tree.flatten(state.params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return state.replace(params=jax.tree.unflatten(tree, [p + scale * jax.random.normal(k, p.shape)
                                                        for p, k in zip(leaves, keys)]))


def _output_block(head, channel, out_features):
  if head == "categorical256":
    return slice(channel * heads.LEVELS, (channel + 1) * heads.LEVELS)
  return slice(channel, channel + 1) if head == "bernoulli" else slice(0, out_features)


CAUSAL_CASES = [(PIXELCNN, (5, 5, 1), head) for head in heads.HEADS] + [(PIXELCNN, (4, 4, 3), "categorical256"),
                                                                         (PIXELCNN, (4, 4, 3), "bernoulli")] + \
               [(GATED, (5, 5, 1), head) for head in heads.HEADS]


@pytest.mark.parametrize("config_file,shape,head", CAUSAL_CASES)
def test_every_output_sees_only_earlier_values(config_file, shape, head):
  """d out[i] / d x[j] = 0 for every j at or after i in raster order (channels in order within a pixel)."""
  family, state = _family(config_file, shape, head)
  model = family.network(state)
  h, w, c = shape
  x = jax.random.normal(jax.random.key(2), (1,) + shape)
  # Every output's gradient at once: jacobian[row, col, feature] = d out[0, row, col, feature] / d x[0].
  jacobian = np.asarray(jax.jit(jax.jacrev(lambda x: model(x)[0]))(x))[..., 0, :, :, :]
  for row, col, ch in itertools.product(range(h), range(w), range(c)):
    block = _output_block(head, ch, family.num_outputs)
    grad = np.abs(jacobian[row, col, block]).sum(0)  # no cancellation between the block's outputs
    order = (np.arange(h)[:, None, None] * w + np.arange(w)[None, :, None]) * c + np.arange(c)[None, None, :]
    later = order >= (row * w + col) * c + ch
    assert np.all(np.asarray(grad)[later] == 0.0), (row, col, ch)


def test_the_gated_stacks_have_no_blind_spot():
  """After enough gated layers, the last pixel depends on every earlier one (a masked PixelCNN does not)."""
  family, state = _family(GATED, (5, 5, 1), "bernoulli", "model.num_blocks=6")
  model = family.network(state)
  x = jax.random.normal(jax.random.key(3), (1, 5, 5, 1))
  grad = np.asarray(jax.grad(lambda x: jnp.sum(model(x)[0, 4, 4]))(x))[0, ..., 0]
  earlier = (np.arange(5)[:, None] * 5 + np.arange(5)[None, :]) < 24
  assert np.all(grad[earlier] != 0.0), grad


def test_mask_a_excludes_and_mask_b_includes_the_centre_channel_order():
  a = causal_mask((3, 3), 3, 6, 3, "A")
  b = causal_mask((3, 3), 3, 6, 3, "B")
  assert a[2].sum() == 0 and b[2].sum() == 0 and a[1, 2].sum() == 0  # nothing below or right of centre
  # output features 0-1 predict R, 2-3 G, 4-5 B: G sees R, B sees R and G; mask B adds each channel itself
  np.testing.assert_array_equal(a[1, 1], [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(b[1, 1], [[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]])


def test_logistic_mixture_matches_a_direct_sum_over_the_256_bins():
  rng = np.random.default_rng(0)
  k = 4
  params = np.concatenate([rng.normal(size=(7, k)), rng.uniform(-1.2, 1.2, (7, k)), rng.uniform(-6, 0, (7, k))], -1)
  levels = np.arange(256)
  log_p = np.asarray(heads.logistic_mixture_log_probs(jnp.asarray(params[:, None, :], jnp.float32),
                                                      jnp.asarray(levels)[None, :]))
  np.testing.assert_allclose(np.exp(log_p).sum(-1), 1.0, atol=2e-5)
  # Direct: sum_k pi_k (F((x + 1/255 - mu_k) / s_k) - F((x - 1/255 - mu_k) / s_k)), with the tails in the edge bins.
  logits, mu, log_s = np.split(params.astype(np.float64), 3, -1)
  pi = np.exp(logits - logits.max(-1, keepdims=True))
  pi /= pi.sum(-1, keepdims=True)
  x = 2 * levels / 255 - 1
  sigmoid = lambda t: 1 / (1 + np.exp(-t))
  scale = np.exp(log_s[:, None, :])
  upper = sigmoid((x[None, :, None] + 1 / 255 - mu[:, None, :]) / scale)
  lower = sigmoid((x[None, :, None] - 1 / 255 - mu[:, None, :]) / scale)
  upper[:, -1], lower[:, 0] = 1.0, 0.0
  direct = np.log(np.sum(pi[:, None, :] * (upper - lower), -1))
  np.testing.assert_allclose(log_p, direct, rtol=1e-4, atol=1e-5)


def test_categorical_head_is_a_distribution_over_256_levels():
  """Summed over the 256 values of channel 0 (channel 1 held at level 0), p is channel 1's p(0)."""
  out = jax.random.normal(jax.random.key(0), (1, 1, 1, 2 * 256)) * 3
  images = jnp.zeros((256, 1, 1, 2)).at[:, 0, 0, 0].set(jnp.arange(256))
  log_p = heads.log_prob("categorical256", jnp.broadcast_to(out, (256, 1, 1, 512)), images)
  np.testing.assert_allclose(float(jax.nn.logsumexp(log_p)), float(jax.nn.log_softmax(out[0, 0, 0, 256:])[0]),
                             atol=1e-4)


@pytest.mark.parametrize("config_file,head,shape", [(PIXELCNN, "categorical256", (1, 2, 1)),
                                                    (GATED, "logistic_mixture", (1, 2, 1)),
                                                    (GATED, "bernoulli", (3, 3, 1)),
                                                    (PIXELCNN, "bernoulli", (2, 2, 2))])
def test_the_exact_likelihood_sums_to_one_over_every_image(config_file, head, shape):
  family, state = _family(config_file, shape, head)
  state = _randomized(state, 0.3)
  values = 2 if head == "bernoulli" else 256
  dims = int(np.prod(shape))
  images = np.array(list(itertools.product(range(values), repeat=dims)), np.float32).reshape((-1,) + shape)
  x = images if head == "bernoulli" else images / 255.0
  log_p = jax.jit(lambda x: family.log_density(state, x, jax.random.key(0)))(jnp.asarray(x))
  np.testing.assert_allclose(float(jax.nn.logsumexp(log_p)), 0.0, atol=2e-4)


def test_samples_follow_the_modelled_joint_distribution():
  """16 binary 2x2 images: the sampler's frequencies against exp(log p) of each, chi-square."""
  family, state = _family(PIXELCNN, (2, 2, 1), "bernoulli")
  state = _randomized(state, 0.5)
  images = np.array(list(itertools.product((0.0, 1.0), repeat=4)), np.float32).reshape(-1, 2, 2, 1)
  p = np.exp(np.asarray(family.log_density(state, jnp.asarray(images), jax.random.key(0)), np.float64))
  assert p.max() > 2 * p.min(), "a near-uniform model would make this test weak"
  n = 20000
  samples = np.asarray(jax.jit(lambda r: family.sample(state, r, n))(jax.random.key(5)))
  index = (samples.reshape(n, 4) * np.array([8, 4, 2, 1])).sum(-1).astype(int)
  counts = np.bincount(index, minlength=16)
  assert stats.chisquare(counts, p / p.sum() * counts.sum()).pvalue > 1e-3


def test_first_pixel_of_categorical_samples_matches_its_distribution():
  family, state = _family(PIXELCNN, (1, 2, 1), "categorical256")
  state = _randomized(state, 0.3)
  logits = family.network(state)(jnp.zeros((1, 1, 2, 1)))[0, 0, 0]
  p = np.asarray(jax.nn.softmax(logits), np.float64)
  n = 30000
  samples = np.asarray(jax.jit(lambda r: family.sample(state, r, n))(jax.random.key(7)))
  counts = np.bincount(np.round(samples[:, 0, 0, 0] * 255).astype(int), minlength=256)
  keep = p * n >= 5  # chi-square wants expected counts >= 5: pool the rest
  observed, expected = counts[keep], p[keep] * n
  if not keep.all():
    observed, expected = np.append(observed, counts[~keep].sum()), np.append(expected, p[~keep].sum() * n)
  assert stats.chisquare(observed, expected / expected.sum() * observed.sum()).pvalue > 1e-3


def test_completion_keeps_the_given_top_half():
  family, state = _family(GATED, (4, 4, 1), "categorical256")
  given = jnp.asarray(np.random.default_rng(0).integers(0, 256, (3, 4, 4, 1)), jnp.float32)
  out = family.sample(state, jax.random.key(0), 3, start=8, given=given)
  np.testing.assert_array_equal(np.round(np.asarray(out[:, :2]) * 255), np.asarray(given[:, :2]))
