"""The importance-weighted (IWAE) estimate of log p(x) for latent-variable families.

log p(x) >= E[log (1/K) sum_k w_k], w_k = p(x, z_k) / q(z_k | x), z_k ~ q(z | x)
(Burda et al., 2016). K = 1 is the ELBO; the bound tightens as K grows and is
exact for any K when q is the true posterior.

A family declares `importance_weights = True` and defines
  `log_importance_weights(state, x, rng, num_samples) -> [num_samples, B]`
(log p(x, z_k) - log q(z_k | x) for fresh z_k, on data in its likelihood space),
computed by the family from its own networks; this module only averages them.
The data is put into the likelihood space once per batch (every z_k sees the same
binarization). The K samples are drawn in chunks with a running log-sum-exp, so
K = 5000 costs the memory of one chunk; the computation is per example, so a batch
sharded over the mesh's data axis stays sharded.
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from jgen.train.compile_options import step_jit

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


@step_jit(static_argnames=("log_weight_fn", "num_samples", "chunk_size"))
def iwae_estimate(log_weight_fn: LogWeightFn, state, x: jax.Array, rng: jax.Array, num_samples: int,
                  chunk_size: int = 100) -> jax.Array:
  """Jitted IWAE estimate of log p(x) per example [B] with K = `num_samples`."""
  return chunked_log_mean_exp(log_weight_fn, state, x, rng, num_samples, chunk_size)


@step_jit(static_argnames=("log_weight_fn", "num_samples"))
def elbo_estimate(log_weight_fn: LogWeightFn, state, x: jax.Array, rng: jax.Array,
                  num_samples: int = 1) -> jax.Array:
  """Monte Carlo ELBO per example [B]: the mean (not log-mean-exp) of `num_samples` log weights."""
  return log_weight_fn(state, x, rng, num_samples).mean(0)


def iwae_log_likelihood(family, state, batches, rng: jax.Array, num_samples: int = 5000, chunk_size: int = 100,
                        mesh: jax.sharding.Mesh | None = None) -> jax.Array:
  """IWAE log p(x) for every example of an iterable of [B,...] arrays as loaded, concatenated to [N].

  With a `mesh`, each batch is sharded over its "data" axis (B must divide evenly).
  All batches of one shape share one compilation.
  """
  if not getattr(family, "importance_weights", False):
    raise NotImplementedError(f"{type(family).__name__} declares no importance weights; IWAE needs them")
  fn = family.log_importance_weights  # a bound method hashes by its family: a valid static jit argument
  prepare = jax.jit(family.prepare_data)
  out = []
  for i, x in enumerate(batches):
    prep_key, key = jax.random.split(jax.random.fold_in(rng, i))
    x = prepare(jnp.asarray(x), prep_key)
    if mesh is not None:
      x = jax.device_put(x, NamedSharding(mesh, P("data")))
    out.append(iwae_estimate(fn, state, x, key, num_samples, chunk_size))
  return jnp.concatenate(out)
