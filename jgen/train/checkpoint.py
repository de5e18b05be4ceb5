"""Orbax checkpoints of a run: train state, data iterator state and config, together.

Layout: `WORKDIR/checkpoints/<step>/{state,data,config}`. The `data` item holds
the grain iterator state and the shapes of one batch (so a run can be restored
for sampling without reading its dataset). A checkpoint that fails to restore is
reported and the previous one is used.
"""

import json
import logging
import os

import jax
import ml_collections
import orbax.checkpoint as ocp

from jgen import config as config_lib
from jgen.errors import UserError

log = logging.getLogger(__name__)


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max(keep, 1), create=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_names=("state", "data", "config"))


def save(mngr: ocp.CheckpointManager, step: int, state, data_state: dict, config) -> None:
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state),
      config=ocp.args.JsonSave(json.loads(config_lib.to_json(config)))))


def _abstract(abstract_state, shardings):
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, shardings)


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, shardings):
  """Restores the newest readable checkpoint: (step, state, data_state), or None if there is none."""
  steps = sorted(mngr.all_steps(), reverse=True)
  for i, step in enumerate(steps):
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(_abstract(abstract_state, shardings)),
          data=ocp.args.JsonRestore()))
    except Exception as e:  # a torn or corrupt checkpoint: fall back to the previous one
      older = f"falling back to step {steps[i + 1]}" if i + 1 < len(steps) else "no older checkpoint to use"
      log.warning("checkpoint at step %d is unreadable (%s: %s); %s", step, type(e).__name__, e, older)
      continue
    return step, restored["state"], restored["data"]
  return None


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with (from its newest checkpoint)."""
  if not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir!r} does not exist: train a model there first with `jgen train CONFIG --workdir {workdir}`")
  if not os.access(workdir, os.R_OK | os.X_OK):
    raise UserError(f"workdir {workdir!r} is not readable: check its permissions")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise UserError(f"workdir {workdir!r} holds no jgen run (no config.json): train one with `jgen train CONFIG --workdir {workdir}`")
  with open(path) as f:
    return config_lib.from_json(f.read())


def restore_for_inference(workdir: str):
  """Returns (config, family, state) of a trained run's newest checkpoint, on the default mesh."""
  from jgen import registry
  from jgen.train import sharding

  config = read_config(workdir)
  mngr = manager(workdir, keep=config.train.get("keep", 3))
  if not mngr.all_steps():
    raise UserError(f"workdir {workdir!r} has no checkpoint yet: let `jgen train` run to its first checkpoint")
  step = mngr.latest_step()
  data = mngr.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore()))["data"]
  family = registry.build(config)
  batch = example_batch(data["batch_spec"])
  mesh = sharding.make_mesh(config.get("mesh", ml_collections.ConfigDict()))
  abstract = jax.eval_shape(family.init, jax.random.key(0), batch)
  shardings = sharding.state_sharding(mesh, abstract)
  found = restore_latest(mngr, abstract, shardings)
  if found is None:
    raise UserError(f"no readable checkpoint in {checkpoint_dir(workdir)!r}")
  return config, family, found[1]


def batch_spec(batch: dict) -> dict:
  return {k: [list(v.shape), str(v.dtype)] for k, v in batch.items()}


def example_batch(spec: dict) -> dict:
  import numpy as np
  return {k: np.zeros(shape, dtype) for k, (shape, dtype) in spec.items()}
