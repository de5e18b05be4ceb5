"""The importance-weighted (IWAE) estimate of log p(x) for latent-variable families.

log p(x) >= E[log (1/K) sum_k w_k], w_k = p(x, z_k) / q(z_k | x), z_k ~ q(z | x)
(Burda et al., 2016). K = 1 is the ELBO; the bound tightens as K grows and is
exact for any K when q is the true posterior.

A family opts in by defining
  `log_importance_weights(state, x, rng, num_samples) -> [num_samples, B]`
(log p(x, z_k) - log q(z_k | x) for fresh z_k), written from its own encode /
decode. VAEs whose `encode(state, x)` gives a diagonal Gaussian (mean, log-variance)
under a N(0, I) prior and whose `decode(state, z)` gives Bernoulli means of binary
images get those weights from `GaussianBernoulliWeights` without writing them. The K samples are drawn in chunks with a running log-sum-exp, so K = 5000
costs the memory of one chunk; the computation is per example, so a batch sharded
over the mesh's data axis stays sharded.
"""

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

# (state, x [B,...], rng, num_samples) -> log weights [num_samples, B]; `state` is any pytree
LogWeightFn = Callable[[object, jax.Array, jax.Array, int], jax.Array]


def chunked_log_mean_exp(log_weight_fn: LogWeightFn, state, x: jax.Array, rng: jax.Array, num_samples: int,
                         chunk_size: int = 100) -> jax.Array:
  """log (1/K) sum_k exp(w_k) per example [B], drawing the K weights `chunk_size` at a time.

  Chunk i uses `fold_in(rng, i)`, so the estimate depends on the chunk size only
  through which random numbers are drawn. Call inside `jax.jit` (see `iwae_estimate`).
  """
  chunk_size = min(chunk_size, num_samples)
  num_chunks = math.ceil(num_samples / chunk_size)

  def add_chunk(running, i):
    w = log_weight_fn(state, x, jax.random.fold_in(rng, i), chunk_size)
    # the last chunk may run past K: its surplus draws are dropped
    valid = i * chunk_size + jnp.arange(chunk_size) < num_samples
    w = jnp.where(valid[:, None], w, -jnp.inf)
    return jnp.logaddexp(running, jax.nn.logsumexp(w, axis=0)), None

  start = jnp.full((x.shape[0],), -jnp.inf, jnp.float32)
  total, _ = jax.lax.scan(add_chunk, start, jnp.arange(num_chunks))
  return total - math.log(num_samples)


@functools.partial(jax.jit, static_argnames=("log_weight_fn", "num_samples", "chunk_size"))
def iwae_estimate(log_weight_fn: LogWeightFn, state, x: jax.Array, rng: jax.Array, num_samples: int,
                  chunk_size: int = 100) -> jax.Array:
  """Jitted IWAE estimate of log p(x) per example [B] with K = `num_samples`."""
  return chunked_log_mean_exp(log_weight_fn, state, x, rng, num_samples, chunk_size)


@functools.partial(jax.jit, static_argnames=("log_weight_fn", "num_samples"))
def elbo_estimate(log_weight_fn: LogWeightFn, state, x: jax.Array, rng: jax.Array,
                  num_samples: int = 1) -> jax.Array:
  """Monte Carlo ELBO per example [B]: the mean (not log-mean-exp) of `num_samples` log weights."""
  return log_weight_fn(state, x, rng, num_samples).mean(0)


class GaussianBernoulliWeights:
  """log p(z) + log p(x | z) - log q(z | x) from a family's Gaussian `encode` and Bernoulli-mean `decode`.

  Equal (and hashed) by family, so it serves as a static jit argument.
  """

  def __init__(self, family):
    self.family = family

  def __eq__(self, other):
    return isinstance(other, GaussianBernoulliWeights) and other.family is self.family

  def __hash__(self):
    return hash(id(self.family))

  def __call__(self, state, x, rng, num_samples):
    mean, logvar = self.family.encode(state, x)
    eps = jax.random.normal(rng, (num_samples,) + mean.shape)
    z = mean + jnp.exp(0.5 * logvar) * eps
    log_q = jax.scipy.stats.norm.logpdf(eps).sum(-1) - 0.5 * logvar.sum(-1)
    log_prior = jax.scipy.stats.norm.logpdf(z).sum(-1)
    probs = self.family.decode(state, z.reshape((-1,) + mean.shape[1:]))
    probs = jnp.clip(probs.reshape((num_samples,) + x.shape), 1e-7, 1.0 - 1e-7)
    log_lik = (x * jnp.log(probs) + (1.0 - x) * jnp.log1p(-probs)).reshape(num_samples, x.shape[0], -1).sum(-1)
    return log_prior + log_lik - log_q


def log_weight_fn_of(family) -> LogWeightFn | None:
  """The family's own `log_importance_weights`, else the Gaussian/Bernoulli VAE weights, else None."""
  fn = getattr(family, "log_importance_weights", None)
  if callable(fn):
    return fn
  if (getattr(family, "family", "") == "VAE" and callable(getattr(family, "encode", None))
      and callable(getattr(family, "decode", None))):
    return GaussianBernoulliWeights(family)
  return None


def has_iwae(family) -> bool:
  return log_weight_fn_of(family) is not None


def iwae_log_likelihood(family, state, batches, rng: jax.Array, num_samples: int = 5000, chunk_size: int = 100,
                        mesh: jax.sharding.Mesh | None = None) -> jax.Array:
  """IWAE log p(x) for every example of an iterable of [B,...] arrays, concatenated to [N].

  With a `mesh`, each batch is sharded over its "data" axis (B must divide evenly).
  The family's bound method is the static function, so all batches share one compilation.
  """
  fn = log_weight_fn_of(family)
  if fn is None:
    raise NotImplementedError(f"{type(family).__name__} defines no log_importance_weights(state, x, rng, "
                              "num_samples); IWAE needs it")
  out = []
  for i, x in enumerate(batches):
    x = jnp.asarray(x)
    if mesh is not None:
      x = jax.device_put(x, NamedSharding(mesh, P("data")))
    out.append(iwae_estimate(fn, state, x, jax.random.fold_in(rng, i), num_samples, chunk_size))
  return jnp.concatenate(out)
