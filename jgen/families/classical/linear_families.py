"""PPCA, factor analysis and Student-t PPCA as registered families.

`train_step` is one EM iteration on the batch (for these configs the whole
training set or a large fixed batch). Metrics are those of the updated model
on that batch.
"""

import jax
import jax.numpy as jnp

from jgen.families.classical import factor_analysis as fa
from jgen.families.classical import lowrank_gaussian as lrg
from jgen.families.classical import ppca
from jgen.families.classical import robust_ppca as rppca
from jgen.families.classical.base import ClassicalFamily
from jgen.registry import register


class _LinearGaussian(ClassicalFamily):
  latent_prior = "gaussian"  # z ~ N(0, I) (Student-t PPCA: a Gaussian scaled by a Gamma weight)
  """Shared plumbing: params are a NamedTuple of the model module, stored as a dict."""

  module = None
  params_type = None

  def params(self, state):
    return self.params_type(**state.params["model"])

  def log_density(self, state, x, rng):
    return self.module.log_prob(self.params(state), self.flatten(x))

  def sample(self, state, rng, n, cond=None):
    return self.to_data(self.module.sample(self.params(state), rng, n))

  def encode(self, state, x):
    """Posterior mean and covariance of z given x."""
    return self.module.encode(self.params(state), self.flatten(x))

  def decode(self, state, z):
    return self.to_data(self.module.decode(self.params(state), z))

  def em_step(self, params, mean, cov):
    return self.module.em_step(params, mean, cov)

  def train_step(self, state, batch, rng):
    """One EM iteration on the batch's moments (both PPCA and factor analysis need no more of the data)."""
    mean, cov = lrg.moments(self.flat(batch, rng))
    params = self.em_step(self.params(state), mean, cov)
    return self._finish(state, params, self.module.mean_log_likelihood(params, mean, cov))

  def _finish(self, state, params, ll):
    new_state = state.replace(step=state.step + 1, params={"model": params._asdict()})
    metrics = self.likelihood_metrics(-ll)
    return new_state, {"loss": -ll, **metrics}


@register("ppca", family="linear / mixture")
class PPCA(_LinearGaussian):
  """Probabilistic PCA. model: latent_dim, init ("closed_form" or "random")."""

  choices = {"init": ("closed_form", "random")}

  module = ppca
  params_type = ppca.PPCAParams

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=8, init="closed_form")
    return d

  def init(self, rng, batch):
    k_deq, k_init = jax.random.split(rng)
    mean, cov = lrg.moments(self.flat(batch, k_deq))
    k = self.config.model.latent_dim
    if self.config.model.init == "closed_form":
      params = ppca.closed_form(mean, cov, k)
    else:
      params = ppca.random_init(k_init, mean, cov, k)
    return self.new_state(params._asdict())



@register("factor_analysis", family="linear / mixture")
class FactorAnalysis(_LinearGaussian):
  """Factor analysis by EM. model: latent_dim."""

  module = fa
  params_type = fa.FAParams

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=8, min_noise=1e-6)
    return d

  def init(self, rng, batch):
    k_deq, k_init = jax.random.split(rng)
    mean, cov = lrg.moments(self.flat(batch, k_deq))
    return self.new_state(fa.init(k_init, mean, cov, self.config.model.latent_dim)._asdict())

  def em_step(self, params, mean, cov):
    return fa.em_step(params, mean, cov, self.config.model.min_noise)


@register("robust_ppca", family="linear / mixture")
class RobustPPCA(_LinearGaussian):
  """Student-t PPCA by EM. model: latent_dim, nu (initial degrees of freedom), learn_nu."""

  module = rppca
  params_type = rppca.RobustPPCAParams

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=2, nu=5.0, learn_nu=True)
    return d

  def init(self, rng, batch):
    x = self.flat(batch, rng)
    return self.new_state(rppca.init(x, self.config.model.latent_dim, self.config.model.nu)._asdict())

  def train_step(self, state, batch, rng):
    x = self.flat(batch, rng)
    params = rppca.em_step(self.params(state), x, self.config.model.learn_nu)
    return self._finish(state, params, jnp.mean(rppca.log_prob(params, x)))
