"""The device mesh and the shardings of state and batches.

The mesh has a `data` axis (batch parallelism) and an opt-in `fsdp` axis: with
`mesh.fsdp > 1` large parameters (and their optimizer moments) are split along
their largest divisible dimension over `fsdp`, and the batch is split over both
axes. Everything else is replicated. Built with `AxisType.Auto`, so jit
propagates shardings and the model code carries no sharding annotations.
"""

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from jgen.errors import UserError

# Parameters with fewer elements than this stay replicated under fsdp: splitting
# them saves little memory and costs a gather each step.
FSDP_MIN_SIZE = 2**14


def make_mesh(mesh_config, devices=None) -> jax.sharding.Mesh:
  devices = devices if devices is not None else jax.devices()
  n = len(devices)
  fsdp = int(mesh_config.get("fsdp", 1))
  data = int(mesh_config.get("data", -1))
  if fsdp < 1 or n % fsdp:
    raise UserError(f"config.mesh.fsdp={fsdp} must divide the {n} devices")
  if data == -1:
    data = n // fsdp
  if data * fsdp != n:
    raise UserError(f"config.mesh data={data} x fsdp={fsdp} does not cover the {n} devices; use data=-1")
  return jax.make_mesh((data, fsdp), ("data", "fsdp"), axis_types=(AxisType.Auto, AxisType.Auto),
                       devices=devices)


def batch_sharding(mesh, leading_axes: int = 0) -> NamedSharding:
  """The batch dimension split over every device: the first one, or the one after `leading_axes` stacking axes
  (k batches of a step [k, B, ...], s steps of a call [s, B, ...] or [s, k, B, ...])."""
  return NamedSharding(mesh, P(*([None] * leading_axes), ("data", "fsdp")))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _leaf_spec(shape, fsdp: int) -> P:
  if fsdp == 1 or int(np.prod(shape, dtype=np.int64)) < FSDP_MIN_SIZE:
    return P()
  for axis in np.argsort(shape)[::-1]:
    if shape[axis] % fsdp == 0:
      spec = [None] * len(shape)
      spec[axis] = "fsdp"
      return P(*spec)
  return P()


def state_sharding(mesh, abstract_state, family=None):
  """Shardings for every leaf of an (abstract) train state.

  Parameters and optimizer moments follow `_leaf_spec` (replicated, or split over fsdp); the buffers a
  family names in `data_sharded_buffers` (a replay buffer) are split over every device along their first
  axis, so each device keeps its own share instead of a full copy.
  """
  fsdp = mesh.shape["fsdp"]
  shardings = jax.tree.map(lambda leaf: NamedSharding(mesh, _leaf_spec(leaf.shape, fsdp)), abstract_state)
  names = getattr(family, "data_sharded_buffers", ())
  if names:
    buffers = dict(shardings.buffers)
    for name in names:
      def split(leaf):
        if leaf.ndim == 0 or leaf.shape[0] % mesh.size:
          raise UserError(f"buffer {name!r} of shape {leaf.shape} cannot be split over {mesh.size} devices: "
                          f"make its size a multiple of {mesh.size}")
        return NamedSharding(mesh, P(("data", "fsdp")))
      buffers[name] = jax.tree.map(split, abstract_state.buffers[name])
    shardings = shardings.replace(buffers=buffers)
  return shardings


def global_batch_size(batch_size: int, mesh) -> int:
  if batch_size % mesh.size:
    raise UserError(f"config.data.batch_size={batch_size} is not divisible by the {mesh.size} devices; "
                    f"use a multiple of {mesh.size}")
  return batch_size


def put_batch(batch: dict, sharding: NamedSharding) -> dict:
  """Places this process's slice of the global batch on the mesh."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def placed_abstract(abstract_tree, shardings):
  """`jax.ShapeDtypeStruct`s of an abstract pytree (e.g. `jax.eval_shape`'s) carrying `shardings`: what a restore
  reads into, or an ahead-of-time compile is lowered for."""
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_tree, shardings)
