"""The VAE family: importance weights against densities written out by hand, the ELBO as their mean, IWAE
tightening with K, the beta / warm-up objective, the discretized logistic decoder, the conditional VAE's
label plumbing and marginal bound, and the autoencoder's reconstruction loss."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgen import config as config_lib
from jgen import registry
from jgen.data.spec import DataSpec
from jgen.eval import iwae as iwae_lib
from jgen.eval import likelihood
from jgen.families.vae import networks
from jgen.families.vae.vae import gaussian_kl, split_posterior
from tests.helpers import config_path

SHAPE = (8, 8, 1)
CONV = config_path("configs/vae/conv_fashion_mnist.py") + ":smoke"
RESNET = config_path("configs/vae/resnet_fashion_mnist.py") + ":smoke"
CVAE = config_path("configs/vae/cvae_fashion_mnist.py") + ":smoke"
AE = config_path("configs/vae/ae_fashion_mnist.py") + ":smoke"


def _family(config_file, *overrides, seed=0):
  config = config_lib.load(config_file, ["model.latent_dim=3", "model.channels=(4,8)", *overrides])
  family = registry.build(config, DataSpec(kind="image", shape=SHAPE, dtype="uint8", num_classes=4))
  state = family.init(jax.random.key(seed), {"x": jnp.zeros((2,) + SHAPE), "label": jnp.zeros((2,), jnp.int32)})
  # push the weights off their initialisation, so posteriors are not near the prior
  leaves, tree = jax.tree.flatten(state.params)
  keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
  return family, state.replace(params=jax.tree.unflatten(
      tree, [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]))


def _images(n=6, seed=3, binary=True):
  x = jax.random.uniform(jax.random.key(seed), (n,) + SHAPE)
  return jnp.round(x) if binary else jnp.round(x * 255) / 255


@pytest.mark.parametrize("config_file", [CONV, RESNET])
def test_log_weights_equal_densities_written_out(config_file):
  """log w = log N(z; 0, I) + log Bern(x; sigmoid(decoder(z))) - log N(z; mean, std), z the same draw."""
  family, state = _family(config_file)
  x, rng, k = _images(), jax.random.key(7), 4
  log_w = family.log_importance_weights(state, x, rng, k)

  @jax.jit
  def written_out(state):
    model = family.network(state)
    mean, logvar = split_posterior(model.encode(x))
    std = jnp.exp(0.5 * logvar)
    z = mean + std * jax.random.normal(rng, (k,) + mean.shape)  # the draw _log_weights makes from the same key
    expected = []
    for i in range(k):
      logits = model.decode(z[i])  # log Bern(x; p) = x log p + (1 - x) log(1 - p), p = sigmoid(logits)
      log_lik = jnp.sum(x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits), axis=(1, 2, 3))
      log_prior = jnp.sum(jax.scipy.stats.norm.logpdf(z[i]), -1)
      log_q = jnp.sum(jax.scipy.stats.norm.logpdf(z[i], mean, std), -1)
      expected.append(log_prior + log_lik - log_q)
    return jnp.stack(expected)

  np.testing.assert_allclose(log_w, written_out(state), rtol=1e-4, atol=1e-3)


def test_elbo_is_the_mean_log_weight_and_iwae_tightens_with_k():
  family, state = _family(CONV)
  x = _images(n=4)
  log_w = family.log_importance_weights(state, x, jax.random.key(0), 20_000)
  recon, kl = family._elbo_terms(family.network(state), x, jax.random.key(1), num_samples=20_000)
  # the closed-form KL plus the sampled reconstruction is the Monte Carlo mean of the log weights: equal
  # within 5 standard errors of two independent 20,000-draw means
  standard_error = jnp.sqrt(2.0 / 20_000) * log_w.std(0)
  assert bool(jnp.all(jnp.abs(log_w.mean(0) + recon + kl) < 5 * standard_error)), (log_w.mean(0), -(recon + kl))
  estimates = [float(iwae_lib.iwae_estimate(family.log_importance_weights, state, x, jax.random.key(2), k,
                                            chunk_size=50).mean()) for k in (1, 10, 200)]
  assert estimates[0] < estimates[1] < estimates[2], estimates


def test_gaussian_kl_matches_monte_carlo():
  mean, logvar = jnp.array([[0.5, -1.0]]), jnp.array([[0.3, -0.7]])
  eps = jax.random.normal(jax.random.key(0), (400_000, 1, 2))
  z = mean + jnp.exp(0.5 * logvar) * eps
  mc = jnp.mean(jnp.sum(jax.scipy.stats.norm.logpdf(z, mean, jnp.exp(0.5 * logvar))
                        - jax.scipy.stats.norm.logpdf(z), -1))
  np.testing.assert_allclose(gaussian_kl(mean, logvar), mc, rtol=1e-2)


def test_beta_and_warm_up_weight_the_kl():
  family, state = _family(CONV, "model.beta=4.0", "model.kl_warmup_steps=10")
  model = family.network(state)
  batch = {"x": _images(), "label": jnp.zeros((6,), jnp.int32)}
  rng = jax.random.key(5)
  for step, weight in ((0, 0.4), (4, 2.0), (9, 4.0), (50, 4.0)):
    loss, metrics = family.step_loss(model, batch, rng, jnp.asarray(step))
    np.testing.assert_allclose(metrics["kl_weight"], weight, rtol=1e-6)
    np.testing.assert_allclose(loss, metrics["recon"] + weight * metrics["kl"], rtol=1e-5)
    np.testing.assert_allclose(metrics["nll"], metrics["recon"] + metrics["kl"], rtol=1e-5)  # the bound, beta = 1


def test_iwae_objective_is_the_k_sample_bound_and_below_the_elbo():
  family, state = _family(CONV, "model.objective=iwae", "model.num_samples=8")
  elbo_family, _ = _family(CONV)
  model = family.network(state)
  batch = {"x": _images(n=32), "label": jnp.zeros((32,), jnp.int32)}
  iwae_losses = [float(family.step_loss(model, batch, jax.random.key(i), jnp.asarray(0))[0]) for i in range(8)]
  elbo_losses = [float(elbo_family.step_loss(model, batch, jax.random.key(i), jnp.asarray(0))[0]) for i in range(8)]
  assert np.mean(iwae_losses) < np.mean(elbo_losses)
  # the loss is the negative log-mean-exp of the same weights the IWAE evaluation averages
  prep, rng = jax.random.split(jax.random.key(0))
  x = family.prepare_data(batch["x"], prep)
  log_w = family._log_weights(model, x, rng, 8)
  expected = -jnp.mean(jax.nn.logsumexp(log_w, 0) - math.log(8))
  np.testing.assert_allclose(family.step_loss(model, batch, jax.random.key(0), jnp.asarray(0))[0], expected,
                             rtol=1e-5)


def test_iwae_config_rules_are_one_line_errors():
  from jgen.errors import UserError

  for bad in (["model.objective=iwae", "model.beta=2.0"], ["model.objective=iwae", "model.num_samples=1"]):
    with pytest.raises(UserError, match="model"):
      config_lib.load(CONV, bad)


def test_logistic_decoder_is_a_distribution_over_the_256_levels():
  """sum over all 256 levels of p(level) = 1 for every pixel, and the family's space is the 8-bit one."""
  family, state = _family(RESNET, "model.decoder=logistic", "model.decoder_components=3")
  assert family.space == "discrete_8bit" and family.main_metric == "bits_per_dim"
  out = family.network(state).decode(jax.random.normal(jax.random.key(0), (2, 3)))
  total = 0.0
  for level in range(256):
    x = jnp.full((2,) + SHAPE, level / 255.0)
    per_pixel = networks.log_likelihood("logistic", out[:, :1, :1], x[:, :1, :1])  # one pixel
    total = total + jnp.exp(per_pixel)
  np.testing.assert_allclose(total, 1.0, rtol=1e-4)
  metrics = family.eval_step(state, {"x": _images(binary=False), "label": jnp.zeros((6,), jnp.int32)},
                             jax.random.key(1))
  np.testing.assert_allclose(metrics["bits_per_dim"], metrics["nll"] / (64 * math.log(2)), rtol=1e-5)
  mean = family.decode(state, jnp.zeros((2, 3)))
  assert mean.shape == (2,) + SHAPE and float(mean.min()) >= 0 and float(mean.max()) <= 1


def test_cvae_label_reaches_both_networks():
  family, state = _family(CVAE)
  x, z = _images(n=2), jnp.zeros((2, 3))
  a = family.decode(state, z, {"label": jnp.array([0, 0])})
  b = family.decode(state, z, {"label": jnp.array([1, 1])})
  assert float(jnp.abs(a - b).max()) > 1e-3, "the label does not change the decoded image"
  ma, _ = family.encode(state, x, {"label": jnp.array([0, 0])})
  mb, _ = family.encode(state, x, {"label": jnp.array([2, 2])})
  assert float(jnp.abs(ma - mb).max()) > 1e-3, "the label does not reach the encoder"
  samples = family.sample(state, jax.random.key(0), 4, {"label": jnp.array([3, 3, 3, 3])})
  same_z = family.decode(state, jax.random.normal(jax.random.key(0), (4, 3)), {"label": jnp.full((4,), 3)})
  np.testing.assert_allclose(samples, same_z, rtol=1e-6)
  with pytest.raises(ValueError, match="label"):
    family.decode(state, z)


def test_cvae_marginal_bound_is_the_label_mixture_of_conditional_elbos():
  family, state = _family(CVAE)
  x, rng = _images(n=3), jax.random.key(4)
  model = family.network(state)
  marginal = family.log_density(state, x, rng)
  xs, labels = family._all_labels(x)
  recon, kl = family._elbo_terms(model, xs, rng, labels)
  per_label = -(recon + kl).reshape(4, 3)
  np.testing.assert_allclose(marginal, jax.nn.logsumexp(per_label, 0) - math.log(4), rtol=1e-5)
  # stratified IWAE of p(x) lies above the marginal ELBO and K = C weights cover every label once
  log_w = family.log_importance_weights(state, x, jax.random.key(5), 400)
  iwae = jax.nn.logsumexp(log_w, 0) - math.log(400)
  assert bool(jnp.all(iwae > marginal - 1.0)), (iwae, marginal)


def test_autoencoder_loss_is_the_reconstruction_cross_entropy():
  family, state = _family(AE)
  assert family.likelihood is None and family.latents is True
  x = _images(binary=False)
  model = family.network(state)
  logits = model.decode(model.encode(x))
  expected = jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=(1, 2, 3)))
  loss, metrics = family.loss(model, {"x": x, "label": jnp.zeros((6,), jnp.int32)}, jax.random.key(0))
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  np.testing.assert_allclose(family.decode(state, family.encode(state, x)), jax.nn.sigmoid(logits), rtol=1e-6)


def test_test_set_binarization_is_fixed_and_left_alone_by_log_prob():
  """The binary family scores the seeded binarization; log_prob does not binarize binary data again."""
  family, state = _family(CONV)
  x = _images(binary=False)
  binarized = likelihood.binarize(x)
  np.testing.assert_array_equal(binarized, likelihood.binarize(x))
  np.testing.assert_array_equal(family.prepare_data(binarized, jax.random.key(9)), binarized)


def test_too_many_levels_for_the_image_side_is_a_one_line_config_error():
  from jgen.errors import UserError

  config = config_lib.load(CONV, ["model.channels=(8,16,32)"])
  with pytest.raises(UserError, match=r"3 levels halve the 28x28 images 3 times; these allow at most 2"):
    registry.build(config, DataSpec(kind="image", shape=(28, 28, 1), dtype="uint8", num_classes=10))
