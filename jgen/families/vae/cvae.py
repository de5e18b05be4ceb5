"""The conditional VAE (Sohn et al. 2015): p(x | y) = E_{p(z)} p(x | z, y), q(z | x, y), y the class label.

Both networks see the one-hot label. The model's own bound is on log p(x | y); the
likelihood it reports through the contract's `log_prob(state, x, rng)`, which sees
no label, is that of the marginal p(x) = sum_y p(y) p(x | y) under the uniform
label prior: log p(x) >= log sum_y p(y) exp(ELBO(x, y)), each ELBO a bound on its
log p(x | y). The IWAE estimate of p(x) draws its K samples stratified over the
labels (sample k under label k mod C), so (1/K) sum_k w_k estimates
sum_y p(y) p(x | y) without bias when C divides K.
"""

import math

import jax
import jax.numpy as jnp

from jgen.families.vae import networks
from jgen.families.vae.vae import VAE, split_posterior
from jgen.registry import register


@register("vae.cvae", family="VAE")
class ConditionalVAE(VAE):
  conditional = True
  conditions = ("label",)
  latent_conditions = ("label",)

  def _all_labels(self, x):
    """Every example under every label: x [C * B, ...] and labels [C * B] (label-major)."""
    c, b = self.num_classes, x.shape[0]
    return jnp.tile(x, (c,) + (1,) * (x.ndim - 1)), jnp.repeat(jnp.arange(c, dtype=jnp.int32), b)

  def _marginal_elbo(self, model, x, rng):
    """log sum_y p(y) exp(ELBO(x, y)) [B]: a lower bound on log p(x) under the uniform label prior."""
    xs, labels = self._all_labels(x)
    recon, kl = self._elbo_terms(model, xs, rng, labels)
    elbo = -(recon + kl).reshape(self.num_classes, x.shape[0])
    return jax.nn.logsumexp(elbo, axis=0) - math.log(self.num_classes)

  def log_density(self, state, x, rng):
    return self._marginal_elbo(self.network(state), x, rng)

  def eval_step(self, state, batch, rng):
    """The conditional bound's terms given the true label, and the marginal bound as `nll` (what the test
    split reports), so validation ranks checkpoints by the number `jgen evaluate` gives."""
    from jgen.eval import likelihood

    model = self.network(state)
    prep_rng, rng = jax.random.split(rng)
    x = self.prepare_data(batch["x"], prep_rng)
    given = self._conditional_eval(model, x, rng, batch["label"])
    out = {f"{k}_given_label": v for k, v in given.items()}
    out.update(likelihood.per_example(self.space, -self._marginal_elbo(model, x, jax.random.fold_in(rng, 2)),
                                      self.spec.dims))
    if "nll_iwae_given_label" in out:
      out["nll_iwae"] = out["nll_iwae_given_label"]
    return out

  def log_importance_weights(self, state, x, rng, num_samples):
    """[num_samples, B] log weights for p(x): sample k under label k mod C (stratified, q(y) = p(y) uniform)."""
    model = self.network(state)
    c, b = self.num_classes, x.shape[0]
    xs, labels = self._all_labels(x)
    mean, logvar = split_posterior(model.encode(xs, labels))
    mean, logvar = mean.reshape(c, b, -1), logvar.reshape(c, b, -1)
    label_k = jnp.arange(num_samples) % c
    mean_k, logvar_k = mean[label_k], logvar[label_k]  # [K, B, d]
    eps = jax.random.normal(rng, mean_k.shape)
    z = mean_k + jnp.exp(0.5 * logvar_k) * eps
    log_q = jnp.sum(jax.scipy.stats.norm.logpdf(eps) - 0.5 * logvar_k, axis=-1)
    log_prior = jnp.sum(jax.scipy.stats.norm.logpdf(z), axis=-1)
    out = model.decode(z.reshape(num_samples * b, -1), jnp.repeat(label_k, b))
    xk = jnp.broadcast_to(x, (num_samples,) + x.shape).reshape((-1,) + x.shape[1:])
    log_lik = networks.log_likelihood(self.config.model.decoder, out, xk).reshape(num_samples, b)
    return log_prior + log_lik - log_q

  def _label(self, cond, n):
    label = (cond or {}).get("label")
    if label is None:
      raise ValueError(f"{self.config.model.name} encodes and decodes given a label: pass cond={{'label': ...}}")
    return jnp.broadcast_to(jnp.asarray(label, jnp.int32), (n,))

  def encode(self, state, x, cond=None):
    """q(z | x, y) as (mean, log-variance); cond["label"] the labels [B]."""
    return split_posterior(self.network(state).encode(x, self._label(cond, x.shape[0])))

  def decode(self, state, z, cond=None):
    """The decoder's mean image of p(x | z, y) in [0, 1]; cond["label"] the labels [B]."""
    out = self.network(state).decode(z, self._label(cond, z.shape[0]))
    return networks.mean_image(self.config.model.decoder, out)

  def sample(self, state, rng, n, cond=None):
    """Decoder means at z ~ N(0, I) given cond["label"] (default: cycling over the classes)."""
    if (cond or {}).get("label") is None:
      cond = self.default_cond(rng, n)
    return self.decode(state, jax.random.normal(rng, (n, self.config.model.latent_dim)), cond)
