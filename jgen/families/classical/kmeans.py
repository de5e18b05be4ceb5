"""k-means++ seeding (Arthur & Vassilvitskii, 2007) and Lloyd iterations, to start mixtures."""

import jax
import jax.numpy as jnp


def squared_distances(x, centers):
  """|x_n - c_k|^2 as [N, K], through one matrix product."""
  d2 = (jnp.sum(jnp.square(x), axis=1)[:, None] - 2.0 * x @ centers.T
        + jnp.sum(jnp.square(centers), axis=1)[None, :])
  return jnp.maximum(d2, 0.0)


def plusplus(rng, x, k):
  """k centers: the first uniform, each next drawn with probability proportional to D(x)^2."""
  n = x.shape[0]
  keys = jax.random.split(rng, k)
  first = jax.random.randint(keys[0], (), 0, n)
  centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
  closest = jnp.sum(jnp.square(x - x[first]), axis=1)

  def body(i, carry):
    centers, closest = carry
    logits = jnp.log(jnp.maximum(closest, 1e-30))
    idx = jax.random.categorical(keys[i], logits)
    centers = centers.at[i].set(x[idx])
    closest = jnp.minimum(closest, jnp.sum(jnp.square(x - x[idx]), axis=1))
    return centers, closest

  centers, _ = jax.lax.fori_loop(1, k, body, (centers, closest))
  return centers


def lloyd(x, centers, iters):
  """`iters` Lloyd steps; an empty cluster keeps its center."""
  k = centers.shape[0]

  def body(_, centers):
    onehot = jax.nn.one_hot(jnp.argmin(squared_distances(x, centers), axis=1), k, dtype=x.dtype)
    counts = jnp.sum(onehot, axis=0)
    sums = onehot.T @ x
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)

  return jax.lax.fori_loop(0, iters, body, centers)


def assign(x, centers):
  return jnp.argmin(squared_distances(x, centers), axis=1)
