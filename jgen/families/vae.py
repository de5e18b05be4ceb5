"""Variational autoencoder with conv encoder/decoder and a Gaussian latent.

Likelihood: Bernoulli on binarized images. Training binarizes each batch afresh
(dynamic binarization, x_bin ~ Bernoulli(pixel intensity)); evaluation
sees the test set binarized once with a fixed seed (binarizing binary data again
changes nothing, so `log_prob` takes either). The loss is the
negative ELBO in nats per image: -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)),
with `beta` weighting the KL term (beta = 1 is the VAE; other values give the
beta-VAE, whose objective is then not a bound).
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgen.family import Family
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


@register("vae.conv", family="VAE")
class VAE(Family):
  likelihood = "lower_bound"
  likelihood_space = "binary"
  likelihood_samples = 1  # the ELBO is estimated with one posterior draw per image
  latents = True
  importance_weights = True

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=32, channels=(32, 64), beta=1.0)
    return d

  def make_networks(self, rngs):
    m = self.config.model
    return {"model": ConvVAE(self.spec.shape, m.latent_dim, tuple(m.channels), rngs=rngs)}

  def _terms(self, model, x_bin, rng):
    """Reconstruction nll and KL per image for binary images, one posterior draw."""
    mean, logvar = model.encode(x_bin)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape)
    logits = model.decode(z)
    recon = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x_bin), axis=(1, 2, 3))
    return recon, gaussian_kl(mean, logvar)

  def loss(self, model, batch, rng):
    bin_rng, z_rng = jax.random.split(rng)
    recon, kl = self._terms(model, self.prepare_data(batch["x"], bin_rng), z_rng)
    beta = self.config.model.beta
    return jnp.mean(recon + beta * kl), {"nll": jnp.mean(recon + kl), "recon": jnp.mean(recon), "kl": jnp.mean(kl)}

  def log_density(self, state, x, rng):
    """The ELBO (a lower bound on log p(x)) in nats of binary x, one posterior draw."""
    recon, kl = self._terms(self.network(state), x, rng)
    return -(recon + kl)

  def eval_step(self, state, batch, rng):
    bin_rng, z_rng = jax.random.split(rng)
    recon, kl = self._terms(self.network(state), self.prepare_data(batch["x"], bin_rng), z_rng)
    return {"nll": recon + kl, "recon": recon, "kl": kl}

  def log_importance_weights(self, state, x, rng, num_samples):
    """log p(z_k) + log p(x | z_k) - log q(z_k | x) [num_samples, B] for binary x, from the decoder's logits."""
    model = self.network(state)
    mean, logvar = model.encode(x)
    eps = jax.random.normal(rng, (num_samples,) + mean.shape)
    z = mean + jnp.exp(0.5 * logvar) * eps
    log_q = jax.scipy.stats.norm.logpdf(eps).sum(-1) - 0.5 * logvar.sum(-1)
    log_prior = jax.scipy.stats.norm.logpdf(z).sum(-1)
    logits = model.decode(z.reshape((-1,) + mean.shape[1:])).reshape((num_samples,) + x.shape)
    log_lik = -optax.sigmoid_binary_cross_entropy(logits, x).reshape(num_samples, x.shape[0], -1).sum(-1)
    return log_prior + log_lik - log_q

  def encode(self, state, x):
    """q(z|x) as (mean, log-variance)."""
    return self.network(state).encode(x)

  def decode(self, state, z):
    """Pixel probabilities (the Bernoulli means) of p(x|z)."""
    return jax.nn.sigmoid(self.network(state).decode(z))

  def sample(self, state, rng, n, cond=None):
    z = jax.random.normal(rng, (n, self.config.model.latent_dim))
    return self.decode(state, z)
