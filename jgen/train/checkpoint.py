"""Orbax checkpoints of a run: train state, data iterator state and config, together.

Layout: `WORKDIR/checkpoints/<step>/{state,data,config}`. The `data` item holds
the grain iterator state and the shapes of one batch (so a run can be restored
for sampling without reading its dataset). A checkpoint that fails to restore is
reported and the previous one is used.

Kept: the `keep` newest checkpoints and, for families that rank runs by their main
eval metric (`Family.best_mode`), also the best checkpoint among those written at an
eval step; `jgen evaluate/sample --checkpoint best` restore it.
"""

import json
import logging
import os

import jax
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy

from jgen import config as config_lib
from jgen.errors import UserError

log = logging.getLogger(__name__)

# The saved metrics dict holds the family's main eval metric under this key.
BEST_KEY = "main"


class _NoMetricsWarning(logging.Filter):
  """Orbax warns on every save without metrics; checkpoints between evals have none by design."""

  def filter(self, record):
    return "did not provide metrics" not in record.getMessage()


logging.getLogger("absl").addFilter(_NoMetricsWarning())


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, keep: int = 3, best_mode: str | None = None) -> ocp.CheckpointManager:
  """Keeps the `keep` newest checkpoints, and with `best_mode` "min" or "max" also the best by saved metric."""
  policies = [preservation_policy.LatestN(n=max(keep, 1))]
  best = {}
  if best_mode is not None:
    if best_mode not in ("min", "max"):
      raise ValueError(f"best_mode must be 'min', 'max' or None, got {best_mode!r}")
    metric = lambda metrics: metrics[BEST_KEY]
    # BestN keeps the end of the sorted list: descending order puts the smallest there.
    policies.append(preservation_policy.BestN(get_metric_fn=metric, reverse=best_mode == "min", n=1,
                                              keep_checkpoints_without_metrics=False))
    best = dict(best_fn=metric, best_mode=best_mode)
  options = ocp.CheckpointManagerOptions(
      create=True, preservation_policy=preservation_policy.AnyPreservationPolicy(policies=policies), **best)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_names=("state", "data", "config"))


def save(mngr: ocp.CheckpointManager, step: int, state, data_state: dict, config,
         main_metric: float | None = None) -> None:
  """Saves a checkpoint; `main_metric` (the eval metric at this very step) lets it compete for best."""
  metrics = None if main_metric is None else {BEST_KEY: float(main_metric)}
  mngr.save(step, metrics=metrics, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state),
      config=ocp.args.JsonSave(json.loads(config_lib.to_json(config)))))


def _abstract(abstract_state, shardings):
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, shardings)


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, shardings, steps=None):
  """Restores the newest readable checkpoint (of `steps`, default all): (step, state, data_state), or None."""
  steps = sorted(mngr.all_steps() if steps is None else steps, reverse=True)
  for i, step in enumerate(steps):
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(_abstract(abstract_state, shardings)),
          data=ocp.args.JsonRestore()))
    except Exception as e:  # a torn or corrupt checkpoint: fall back to the previous one
      older = f"falling back to step {steps[i + 1]}" if i + 1 < len(steps) else "no older checkpoint to use"
      # The storage layer's message can run to kilobytes of JSON: its first line says enough.
      reason = (str(e).splitlines() or [""])[0][:160]
      log.warning("checkpoint at step %d is unreadable (%s: %s); %s", step, type(e).__name__, reason, older)
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
    saved = config_lib.from_json(f.read())
  try:  # onto today's defaults, so a run saved before a field was added still reads
    config = config_lib.defaults_for(saved.model.name)
    config_lib.merge(config, saved, f"{path}")
  except (UserError, AttributeError) as e:
    raise UserError(f"workdir {workdir!r} holds a run this version of jgen cannot read ({e}); retrain it") from None
  return config


def restore_for_inference(workdir: str, which: str = "latest", overrides=()):
  """Returns (config, family, state) of a trained run's newest (or, `which="best"`, best) checkpoint.

  `overrides` (`key=value`) change inference-time fields of the config (a sampler's steps) before the family
  is built. The dataset is not read: its spec is stored with the checkpoint.
  """
  from jgen import registry
  from jgen.data.spec import DataSpec, to_model_input
  from jgen.train import sharding

  if which not in ("latest", "best"):
    raise UserError(f"--checkpoint must be 'latest' or 'best', got {which!r}")
  config = read_config(workdir)
  config_lib.apply_overrides(config, overrides)
  mngr = manager(workdir, keep=config.train.keep)
  if not mngr.all_steps():
    raise UserError(f"workdir {workdir!r} has no checkpoint yet: let `jgen train` run to its first checkpoint")
  step = mngr.latest_step()
  data = mngr.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore()))["data"]
  if "spec" not in data:
    raise UserError(f"workdir {workdir!r} holds a checkpoint of an older jgen (no data spec): retrain it")
  spec = DataSpec.from_json(data["spec"])
  family = registry.build(config, spec)
  if which == "best":
    if family.best_mode is None:
      raise UserError(f"{config.model.name} runs keep no best checkpoint (this run ranks nothing by an eval "
                      f"metric): use --checkpoint latest")
    mngr = manager(workdir, keep=config.train.keep, best_mode=family.best_mode)
    if not any(mngr.metrics(s) for s in mngr.all_steps()):
      raise UserError(f"workdir {workdir!r} has no checkpoint written at an eval step yet: use --checkpoint latest")
    step = mngr.best_step()
  batch = spec.example_batch(data["batch_spec"]["x"][0][0])
  mesh = sharding.make_mesh(config.mesh)
  abstract = jax.eval_shape(lambda rng, b: family.init(rng, to_model_input(b)), jax.random.key(0), batch)
  shardings = sharding.state_sharding(mesh, abstract, family)
  # The newest readable checkpoint for "latest" (falling back past a corrupt one); exactly the best for "best".
  found = restore_latest(mngr, abstract, shardings, None if which == "latest" else [step])
  if found is None:
    raise UserError(f"no readable checkpoint in {checkpoint_dir(workdir)!r}")
  return config, family, found[1]


def batch_spec(batch: dict) -> dict:
  return {k: [list(v.shape), str(v.dtype)] for k, v in batch.items()}


def example_batch(spec: dict) -> dict:
  import numpy as np
  return {k: np.zeros(shape, dtype) for k, (shape, dtype) in spec.items()}
