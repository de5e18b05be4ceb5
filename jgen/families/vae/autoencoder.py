"""The deterministic autoencoder: z = f(x), x_hat = g(z), trained on reconstruction alone (no KL, no prior).

It learns a code but no distribution over codes: its latents fill an irregular
region, so decoding z ~ N(0, I) (what `sample` does, to show it side by side with
the VAE) gives poor images. That is why it is not a generative model and the VAE is.
The loss is the Bernoulli cross-entropy of the pixel intensities in [0, 1] (soft
targets), summed over an image; it declares no likelihood.
"""

import jax
import jax.numpy as jnp

from jgen.family import Family
from jgen.families.vae import networks
from jgen.nn.bernoulli import bernoulli_log_prob
from jgen.registry import register


@register("ae.conv", family="VAE")
class Autoencoder(Family):
  mixed_precision = True
  latents = True
  main_metric = "recon"
  best_mode = "min"
  progress_metric = "loss"
  choices = {"arch": networks.ARCHS, "decoder": ("bernoulli",)}

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=32, channels=(32, 64), arch="conv", blocks=1, decoder="bernoulli",
                   decoder_components=1)
    return d

  def __init__(self, config, spec):
    super().__init__(config, spec)
    if spec.kind != "image":
      raise ValueError(f"{config.model.name} models images; the dataset holds {spec.kind}")
    networks.check_levels(spec.shape, config.model.channels)

  def make_networks(self, rngs):
    return {"model": networks.EncoderDecoder(self.spec.shape, self.config.model, self.config.model.latent_dim, 0,
                                             dtype=self.compute_dtype, rngs=rngs)}

  def _recon(self, model, x):
    logits = model.decode(model.encode(x))
    return -jnp.sum(bernoulli_log_prob(logits, x), axis=(1, 2, 3))

  def loss(self, model, batch, rng):
    recon = self._recon(model, batch["x"])
    return jnp.mean(recon), {"recon": jnp.mean(recon)}

  def eval_step(self, state, batch, rng):
    return {"recon": self._recon(self.network(state), batch["x"])}

  def encode(self, state, x):
    """The code z [B, latent_dim] of images in [0, 1]."""
    return self.network(state).encode(x)

  def decode(self, state, z):
    """Pixel intensities in [0, 1]."""
    return jax.nn.sigmoid(self.network(state).decode(z))

  def sample(self, state, rng, n, cond=None):
    """Decodes z ~ N(0, I): an autoencoder has no prior, so these show what its decoder does off its codes."""
    return self.decode(state, jax.random.normal(rng, (n, self.config.model.latent_dim)))
