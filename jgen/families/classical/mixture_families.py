"""The Gaussian mixture (EM) and the Bayesian Gaussian mixture (variational) as registered families.

The GMM keeps all restarts in the state, stacked on a leading axis, and
updates them together in each `train_step`; likelihoods, samples and codes
come from the restart with the best log-likelihood so far.
"""

import jax
import jax.numpy as jnp

from jgen.families.classical import bgmm
from jgen.families.classical import gmm
from jgen.families.classical import gmm_fit
from jgen.families.classical import kmeans
from jgen.families.classical.base import ClassicalFamily
from jgen.registry import register


@register("gmm", family="linear / mixture")
class GaussianMixture(ClassicalFamily):
  """model: num_components, covariance_type (full, diag, spherical), num_restarts, reg_covar, lloyd_iters."""

  latent_type = "discrete"  # z is the component; encode gives its posterior, decode a component's mean

  choices = {"covariance_type": ("full", "diag", "spherical")}

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(num_components=10, covariance_type="full", num_restarts=1, reg_covar=1e-6, lloyd_iters=10)
    return d

  def _reg(self):
    return self.config.model.reg_covar

  def init(self, rng, batch):
    k_deq, k_init = jax.random.split(rng)
    x = self.flat(batch, k_deq)
    m = self.config.model
    keys = jax.random.split(k_init, m.num_restarts)
    starts = jax.vmap(lambda r: gmm_fit.init_from_kmeans(
        r, x, m.num_components, m.covariance_type, self._reg(), m.lloyd_iters))(keys)
    return self.new_state(starts._asdict(), {"loglik": jnp.full(keys.shape[:1], -jnp.inf, jnp.float32)})

  def params(self, state):
    """The best restart's parameters."""
    best = jnp.argmax(state.buffers["loglik"])
    return gmm.GMMParams(**jax.tree.map(lambda a: a[best], state.params["model"]))

  def train_step(self, state, batch, rng):
    x = self.flat(batch, rng)
    params, ll = jax.vmap(lambda p: gmm.em_step(p, x, self._reg()))(gmm.GMMParams(**state.params["model"]))
    ll = jnp.where(jnp.isfinite(ll), ll, -jnp.inf)
    new_state = state.replace(step=state.step + 1, params={"model": params._asdict()}, buffers={"loglik": ll})
    best = jnp.max(ll)
    # The log-likelihood is that of the parameters before this update (the E-step's).
    return new_state, {"loss": -best, **self.likelihood_metrics(-best)}

  def log_density(self, state, x, rng):
    return gmm.log_prob(self.params(state), self.flatten(x))

  def sample(self, state, rng, n, cond=None):
    return self.to_data(gmm.sample(self.params(state), rng, n)[0])

  def encode(self, state, x):
    """Responsibilities [B, K]: the posterior over the component."""
    return gmm.predict_proba(self.params(state), self.flatten(x))

  def predict(self, state, x):
    return gmm.predict(self.params(state), self.flatten(x))

  def decode(self, state, z):
    """The mean of component z."""
    return self.to_data(self.params(state).means[z])

  def outlier_scores(self, state, x):
    return gmm.outlier_scores(self.params(state), self.flatten(x))


@register("bgmm", family="linear / mixture")
class BayesianGaussianMixture(ClassicalFamily):
  """model: max_components, dirichlet_process, weight_concentration (0 = 1/K), init ("kmeans", "random"),
  reg_covar, lloyd_iters. Other prior hyperparameters take the data-dependent defaults of `bgmm.default_prior`."""

  latent_type = "discrete"

  choices = {"init": ("kmeans", "random")}

  # The exact likelihood is that of the posterior predictive.

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(max_components=10, dirichlet_process=False, weight_concentration=0.0, init="kmeans",
                   reg_covar=0.0, lloyd_iters=10)
    return d

  def init(self, rng, batch):
    k_deq, k_init = jax.random.split(rng)
    x = self.flat(batch, k_deq)
    m = self.config.model
    k = m.max_components
    conc = m.weight_concentration or None
    prior = bgmm.default_prior(x, k, conc)
    if m.init == "kmeans":
      centers = kmeans.lloyd(x, kmeans.plusplus(k_init, x, k), m.lloyd_iters)
      resp = jax.nn.one_hot(kmeans.assign(x, centers), k, dtype=x.dtype)
    else:
      resp = jax.random.dirichlet(k_init, jnp.ones((k,), x.dtype), (x.shape[0],))
    post = bgmm.m_step(prior, x, resp, m.dirichlet_process, m.reg_covar)
    return self.new_state(post._asdict(), {"prior": prior._asdict()})

  def posterior(self, state):
    return bgmm.Posterior(**state.params["model"])

  def train_step(self, state, batch, rng):
    x = self.flat(batch, rng)
    m = self.config.model
    prior = bgmm.Prior(**state.buffers["prior"])
    post, elbo = bgmm.step(prior, self.posterior(state), x, m.dirichlet_process, m.reg_covar)
    weights = bgmm.expected_weights(post)
    new_state = state.replace(step=state.step + 1, params={"model": post._asdict()})
    metrics = {"loss": -elbo / x.shape[0], "elbo": elbo / x.shape[0],
               "active_components": jnp.sum(weights > 0.01).astype(jnp.float32)}
    return new_state, metrics

  def weights(self, state):
    return bgmm.expected_weights(self.posterior(state))

  def log_density(self, state, x, rng):
    return bgmm.log_prob(self.posterior(state), self.flatten(x))

  def sample(self, state, rng, n, cond=None):
    return self.to_data(bgmm.sample(self.posterior(state), rng, n)[0])

  def encode(self, state, x):
    return bgmm.e_step(self.posterior(state), self.flatten(x))[0]

  def predict(self, state, x):
    return bgmm.predict(self.posterior(state), self.flatten(x))

  def decode(self, state, z):
    return self.to_data(self.posterior(state).means[z])
