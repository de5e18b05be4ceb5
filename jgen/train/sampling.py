"""One jitted sampler per family and sample count, its output sharded over the mesh's data axis.

Every call site (the loop's grids and FID, `jgen sample`, the evaluator, the
demo) draws through `Sampler`, so a conditional family gets its conditions
everywhere and each device computes only its share of the samples. Conditions
are traced arrays (a new label or guidance value does not recompile); the sample
count is static. Every process calls the sampler (the computation spans all
devices); only the caller decides who writes the result.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jgen.train import compile_options, sharding


class Sampler:

  def __init__(self, family, mesh=None):
    self.family = family
    self.mesh = mesh if mesh is not None else sharding.make_mesh({"data": -1, "fsdp": 1})

  @functools.cache
  def _compiled(self, n: int):
    # Split over the devices when n divides evenly; otherwise every device draws all n (same numbers).
    spec = P(("data", "fsdp")) if n % self.mesh.size == 0 else P()
    # The train step's compiler options: on XLA:CPU, Eigen's convolutions run a U-Net's forward pass faster.
    return compile_options.step_jit(lambda state, rng, cond: self.family.sample(state, rng, n, cond),
                                    out_shardings=NamedSharding(self.mesh, spec))

  def __call__(self, state, rng: jax.Array, n: int, cond: dict | None = None) -> jax.Array:
    """`n` samples (a device array, sharded over `data` where n divides evenly)."""
    cond = None if cond is None else {k: jnp.asarray(v) for k, v in cond.items()}
    return self._compiled(n)(state, rng, cond)

  def default(self, state, rng: jax.Array, n: int) -> jax.Array:
    """`n` samples under the family's default conditions (labels cycling over the classes)."""
    return self(state, rng, n, self.family.default_cond(jax.random.fold_in(rng, 1), n))

  def to_host(self, x) -> np.ndarray:
    """All samples on the host (every process gets the full array)."""
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def draw(sampler: Sampler, state, n: int, rng: jax.Array, batch_size: int = 500, cond_fn=None) -> np.ndarray:
  """`n` samples on the host in batches of `batch_size` (batch i with `fold_in(rng, i)`), default conditions
  unless `cond_fn(rng, size)` gives others."""
  out = []
  for i, start in enumerate(range(0, n, batch_size)):
    size = min(batch_size, n - start)
    key = jax.random.fold_in(rng, i)
    x = sampler(state, key, size, cond_fn(jax.random.fold_in(key, 1), size)) if cond_fn else sampler.default(state, key, size)
    out.append(sampler.to_host(x))
  return np.concatenate(out)


def draw_with_labels(sampler: Sampler, state, n: int, rng: jax.Array, batch_size: int = 500):
  """`draw` under the default conditions, returning (samples, the labels they were drawn under or None)."""
  labels = []

  def cond_fn(key, size):
    cond = sampler.family.default_cond(key, size)
    if cond is not None and "label" in cond:
      labels.append(np.asarray(cond["label"]))
    return cond

  x = draw(sampler, state, n, rng, batch_size, cond_fn)
  return x, (np.concatenate(labels) if labels else None)


def per_class_labels(num_classes: int, per_class: int) -> np.ndarray:
  """Labels [num_classes * per_class] in grid order: per_class of class 0, then of class 1, ..."""
  return np.repeat(np.arange(num_classes, dtype=np.int32), per_class)


def per_class(sampler: Sampler, state, rng: jax.Array, per_class: int) -> tuple[np.ndarray, np.ndarray]:
  """A label-conditional family's samples as a grid: (samples [C, per_class, ...], labels [C, per_class]), row c
  drawn under label c."""
  num_classes = sampler.family.spec.num_classes
  labels = per_class_labels(num_classes, per_class)
  x = sampler.to_host(sampler(state, rng, len(labels), {"label": labels}))
  return x.reshape((num_classes, per_class) + x.shape[1:]), labels.reshape(num_classes, per_class)
