"""The variational autoencoder (Kingma & Welling 2014) with its common variants, behind one config.

q(z | x) = N(mean(x), diag exp(logvar(x))), p(z) = N(0, I), p(x | z) the decoder's
pixel likelihood: Bernoulli on binarized images (training binarizes each batch
afresh, dynamic binarization; evaluation sees the test set binarized once with a
fixed seed) or a discretized logistic mixture over the 256 levels of 8-bit images
(reported in bits/dim, no dequantization offset).

Objectives (`model.objective`):
- "elbo": -E_q[log p(x | z)] + beta * w(step) * KL(q || p), the KL in closed form,
  the expectation over `model.num_samples` draws. beta = 1 and no warm-up is the
  VAE's bound; beta != 1 is the beta-VAE (Higgins et al. 2017), whose objective
  is then not a bound (the reported nll stays the beta = 1 ELBO, which is);
  `kl_warmup_steps` ramps w from 0 to 1 linearly (Bowman et al. 2016; Sonderby et al. 2016).
- "iwae": -log (1/K) sum_k p(x, z_k) / q(z_k | x), K = `model.num_samples`
  (Burda et al. 2016): a tighter bound, trained through the reparameterised draws.

The importance weights log p(x, z_k) - log q(z_k | x) are computed in one place
(`_log_weights`, from the decoder's outputs), shared by IWAE training and the IWAE
evaluation of every VAE whatever objective trained it.
"""

import math

import jax
import jax.numpy as jnp

from jgen.family import Family
from jgen.families.vae import networks
from jgen.registry import register


def gaussian_kl(mean, logvar):
  """KL(N(mean, exp(logvar)) || N(0, I)), summed over latent dims."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def split_posterior(features):
  """Encoder features [B, 2d] -> (mean, log-variance), the log-variance kept in a range where exp is safe."""
  mean, logvar = jnp.split(features, 2, axis=-1)
  return mean, jnp.clip(logvar, -12.0, 8.0)


@register("vae.conv", family="VAE")
class VAE(Family):
  likelihood = "lower_bound"
  mixed_precision = True
  likelihood_samples = 1  # the reported ELBO is estimated with one posterior draw per image
  latents = True
  latent_prior = "gaussian"
  importance_weights = True
  choices = {"arch": networks.ARCHS, "decoder": networks.DECODERS, "objective": ("elbo", "iwae")}
  conditional = False  # the conditional VAE gives both networks the label

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=32, channels=(32, 64), arch="conv", blocks=1, decoder="bernoulli",
                   decoder_components=3, beta=1.0, kl_warmup_steps=0, objective="elbo", num_samples=1)
    return d

  @classmethod
  def check_model(cls, model):
    if model.objective == "iwae" and (model.beta != 1.0 or model.kl_warmup_steps):
      raise ValueError(f"model.objective='iwae' is the importance-weighted bound: it takes no beta "
                       f"(got {model.beta}) or KL warm-up (got {model.kl_warmup_steps}); use objective='elbo'")
    if model.objective == "iwae" and model.num_samples < 2:
      raise ValueError("model.num_samples=1 with objective='iwae' is the ELBO: give K >= 2 (e.g. 5) or use 'elbo'")

  def __init__(self, config, spec):
    super().__init__(config, spec)
    # The decoder decides the likelihood space: binarized images, or the 256 levels of 8-bit images.
    self.space = "discrete_8bit" if config.model.decoder == "logistic" else "binary"
    if spec.kind != "image":
      raise ValueError(f"{config.model.name} models images; the dataset holds {spec.kind}")
    networks.check_levels(spec.shape, config.model.channels)
    self.num_classes = spec.num_classes if self.conditional else 0
    if self.conditional and not self.num_classes:
      raise ValueError(f"{config.model.name} conditions on labels; the dataset has none")

  @property
  def main_metric(self):
    """The validation number checkpoints are ranked by: the bound the model trains on, in the space's unit."""
    if self.config.model.objective == "iwae":
      return "nll_iwae"
    return "bits_per_dim" if self.space == "discrete_8bit" else "nll"

  def make_networks(self, rngs):
    return {"model": networks.EncoderDecoder(self.spec.shape, self.config.model, 2 * self.config.model.latent_dim,
                                             self.num_classes, dtype=self.compute_dtype, rngs=rngs)}

  # ---- the bound ---------------------------------------------------------------------------------------------
  def _elbo_terms(self, model, x, rng, label=None, num_samples: int = 1):
    """(reconstruction nll, KL) per image [B] of data in the likelihood space, the nll averaged over draws."""
    mean, logvar = split_posterior(model.encode(x, label))
    eps = jax.random.normal(rng, (num_samples,) + mean.shape)
    z = (mean + jnp.exp(0.5 * logvar) * eps).reshape((-1,) + mean.shape[1:])
    out = model.decode(z, None if label is None else jnp.tile(label, num_samples))
    log_lik = networks.log_likelihood(self.config.model.decoder, out, jnp.tile(x, (num_samples, 1, 1, 1)))
    return -log_lik.reshape(num_samples, -1).mean(0), gaussian_kl(mean, logvar)

  def _log_weights(self, model, x, rng, num_samples: int, label=None):
    """log p(z_k) + log p(x | z_k) - log q(z_k | x) [num_samples, B], z_k ~ q(z | x), x in the likelihood space."""
    mean, logvar = split_posterior(model.encode(x, label))
    eps = jax.random.normal(rng, (num_samples,) + mean.shape)
    z = mean + jnp.exp(0.5 * logvar) * eps
    log_q = jnp.sum(jax.scipy.stats.norm.logpdf(eps) - 0.5 * logvar, axis=-1)
    log_prior = jnp.sum(jax.scipy.stats.norm.logpdf(z), axis=-1)
    labels = None if label is None else jnp.tile(label, num_samples)
    out = model.decode(z.reshape((-1,) + mean.shape[1:]), labels)
    xs = jnp.broadcast_to(x, (num_samples,) + x.shape).reshape((-1,) + x.shape[1:])
    log_lik = networks.log_likelihood(self.config.model.decoder, out, xs).reshape(num_samples, -1)
    return log_prior + log_lik - log_q

  def _kl_weight(self, step):
    m = self.config.model
    if not m.kl_warmup_steps:
      return m.beta
    return m.beta * jnp.minimum(1.0, (step + 1.0) / m.kl_warmup_steps)

  def _labels(self, batch):
    return batch["label"] if self.conditional else None

  def step_loss(self, model, batch, rng, step):
    m = self.config.model
    prep_rng, rng = jax.random.split(rng)
    x, label = self.prepare_data(batch["x"], prep_rng), self._labels(batch)
    if m.objective == "iwae":
      log_w = self._log_weights(model, x, rng, m.num_samples, label)
      nll = -(jax.nn.logsumexp(log_w, axis=0) - math.log(m.num_samples))
      return jnp.mean(nll), {"nll_iwae": jnp.mean(nll)}
    recon, kl = self._elbo_terms(model, x, rng, label, m.num_samples)
    weight = self._kl_weight(step)
    metrics = {"nll": jnp.mean(recon + kl), "recon": jnp.mean(recon), "kl": jnp.mean(kl), "kl_weight": weight}
    return jnp.mean(recon + weight * kl), metrics

  def loss(self, model, batch, rng):
    return self.step_loss(model, batch, rng, jnp.asarray(self.config.model.kl_warmup_steps))

  def _conditional_eval(self, model, x, rng, label):
    """Per-example validation metrics of data already in the likelihood space (given the label, if any)."""
    from jgen.eval import likelihood

    recon, kl = self._elbo_terms(model, x, rng, label)
    out = {**likelihood.per_example(self.space, recon + kl, self.spec.dims), "recon": recon, "kl": kl}
    if self.config.model.objective == "iwae":
      k = self.config.model.num_samples
      log_w = self._log_weights(model, x, jax.random.fold_in(rng, 1), k, label)
      out["nll_iwae"] = -(jax.nn.logsumexp(log_w, axis=0) - math.log(k))
    return out

  def eval_step(self, state, batch, rng):
    prep_rng, rng = jax.random.split(rng)
    return self._conditional_eval(self.network(state), self.prepare_data(batch["x"], prep_rng), rng,
                                  self._labels(batch))

  def log_density(self, state, x, rng):
    """The ELBO (a lower bound on log p(x)) in nats of x in the likelihood space, one posterior draw."""
    recon, kl = self._elbo_terms(self.network(state), x, rng)
    return -(recon + kl)

  def log_importance_weights(self, state, x, rng, num_samples):
    """log p(x, z_k) - log q(z_k | x) [num_samples, B] for x in the likelihood space (the IWAE estimate's)."""
    return self._log_weights(self.network(state), x, rng, num_samples)

  # ---- latents and samples -------------------------------------------------------------------------------------
  def encode(self, state, x):
    """q(z | x) as (mean, log-variance) of images in [0, 1]."""
    return split_posterior(self.network(state).encode(x))

  def decode(self, state, z):
    """The decoder's mean image in [0, 1] (Bernoulli probabilities, or the mixture's mean level)."""
    return networks.mean_image(self.config.model.decoder, self.network(state).decode(z))

  def sample(self, state, rng, n, cond=None):
    """Decoder means at z ~ N(0, I): the usual way to show a VAE's samples (pixel noise left out)."""
    return self.decode(state, jax.random.normal(rng, (n, self.config.model.latent_dim)))
