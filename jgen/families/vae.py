"""Variational autoencoder with conv encoder/decoder and a Gaussian latent.

Likelihood: Bernoulli on binarized images. Training binarizes each batch afresh
(dynamic binarization, x_bin ~ Bernoulli(pixel intensity)); evaluation
binarizes the test set with the evaluator's fixed seeded key. The loss is the
negative ELBO in nats per image: -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)),
with `beta` weighting the KL term (beta = 1 is the VAE; other values give the
beta-VAE, whose objective is then not a bound).
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgen.family import LossFamily
from jgen.nn.convnets import ConvDecoder, ConvEncoder
from jgen.registry import register


class ConvVAE(nnx.Module):

  def __init__(self, image_shape, latent_dim: int, channels, *, rngs: nnx.Rngs):
    self.latent_dim = latent_dim
    self.encoder = ConvEncoder(image_shape, channels, 2 * latent_dim, rngs=rngs)
    self.decoder = ConvDecoder(latent_dim, image_shape, tuple(reversed(channels)), rngs=rngs)

  def encode(self, x):
    """q(z|x) as (mean, log-variance)."""
    mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
    return mean, logvar

  def decode(self, z):
    """Bernoulli logits of p(x|z)."""
    return self.decoder(z)


def gaussian_kl(mean, logvar):
  """KL(N(mean, exp(logvar)) || N(0, I)), summed over latent dims."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def binarize(rng, x):
  return jax.random.bernoulli(rng, x).astype(x.dtype)


@register("vae.conv", family="VAE")
class VAE(LossFamily):
  main_metric = "nll"
  log_prob_kind = "lower_bound"
  log_prob_num_samples = 1  # the ELBO is estimated with one posterior draw per image
  likelihood_space = "binary"

  def make_model(self, rngs, batch):
    m = self.config.model
    return ConvVAE(batch["x"].shape[1:], m.latent_dim, tuple(m.channels), rngs=rngs)

  def _terms(self, model, x_bin, rng):
    mean, logvar = model.encode(x_bin)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape)
    logits = model.decode(z)
    recon = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x_bin), axis=(1, 2, 3))
    return recon, gaussian_kl(mean, logvar)

  def loss(self, model, batch, rng):
    bin_rng, z_rng = jax.random.split(rng)
    recon, kl = self._terms(model, binarize(bin_rng, batch["x"]), z_rng)
    beta = self.config.model.get("beta", 1.0)
    return jnp.mean(recon + beta * kl), {"nll": jnp.mean(recon + kl), "recon": jnp.mean(recon), "kl": jnp.mean(kl)}

  def log_prob(self, state, x, rng=None):
    """ELBO (a lower bound on log p(x)) in nats, one posterior sample, for binary x."""
    rng = jax.random.key(0) if rng is None else rng
    recon, kl = self._terms(self.model(state), x, rng)
    return -(recon + kl)

  def eval_step(self, state, batch, rng):
    bin_rng, z_rng = jax.random.split(rng)
    recon, kl = self._terms(self.model(state), binarize(bin_rng, batch["x"]), z_rng)
    return {"nll": recon + kl, "recon": recon, "kl": kl}

  def encode(self, state, x):
    return self.model(state).encode(x)

  def decode(self, state, z):
    """Pixel probabilities (the Bernoulli means) of p(x|z)."""
    return jax.nn.sigmoid(self.model(state).decode(z))

  def sample(self, state, rng, n, **cond):
    z = jax.random.normal(rng, (n, self.config.model.latent_dim))
    return self.decode(state, z)
