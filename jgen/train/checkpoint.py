"""Orbax checkpoints of a run: train state, data iterator state and config, together.

Layout: `WORKDIR/checkpoints/<step>/{state,data,config}`. The `data` item holds
the grain iterator state and the shapes of one batch (so a run can be restored
for sampling without reading its dataset) and a checksum of every array of the
state, verified on restore. A checkpoint that fails to restore, fails its
checksum or holds an unusable data item is reported in one line and the previous
one is used; a resuming run moves it aside (`<step>.corrupt`) and writes that step
again when it gets there.

Kept: the `keep` newest checkpoints and, for families that rank runs by their main
eval metric (`Family.best_mode`), also the best checkpoint among those written at an
eval step; `jgen evaluate/sample --checkpoint best` restore it.
"""

import json
import logging
import os
import sys

import jax
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy

from jgen import config as config_lib
from jgen.errors import UserError, first_line, notice
from jgen.train import checksum, sharding

# The saved metrics dict holds the family's main eval metric under this key.
BEST_KEY = "main"


class _ExpectedOrbaxWarnings(logging.Filter):
  """Orbax warns on every save without metrics (checkpoints between evals have none by design) and on every
  read-only manager (readers use one on purpose), and logs a background save that hit a full disk or a
  permission error with its traceback: the loop reports that in one line (jgen.train.workdir)."""

  EXPECTED = ("did not provide metrics", "read_only=True", "Given directory is read only",
              "No space left on device", "Permission denied", "Read-only file system")

  def filter(self, record):
    texts = [record.getMessage()]
    e = record.exc_info[1] if record.exc_info else None
    while e is not None and len(texts) < 20:  # the error and its causes
      texts.append(str(e))
      e = e.__cause__ or e.__context__
    return not any(expected in text for text in texts for expected in self.EXPECTED)


logging.getLogger("absl").addFilter(_ExpectedOrbaxWarnings())
logging.getLogger("asyncio").addFilter(_ExpectedOrbaxWarnings())  # the same failure, from orbax's write tasks


def _quiet_closed_loop(unraisable, _default=sys.unraisablehook):
  """After a restore fails, the storage layer's pending reads complete on an event loop that orbax has closed,
  each printing an "Event loop is closed" traceback: noise about a failure already reported in one line."""
  if isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value):
    return
  _default(unraisable)


sys.unraisablehook = _quiet_closed_loop


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, keep: int = 3, best_mode: str | None = None, create: bool = True) -> ocp.CheckpointManager:
  """Keeps the `keep` newest checkpoints, and with `best_mode` "min" or "max" also the best by saved metric.

  `create=False` for readers (sample, evaluate), which must not make a directory in a workdir they only read.
  """
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
      create=create, read_only=not create, cleanup_tmp_directories=create, preservation_policy=preservation_policy.AnyPreservationPolicy(policies=policies), **best)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_names=("state", "data", "config"))


def save(mngr: ocp.CheckpointManager, step: int, state, data_state: dict, config,
         main_metric: float | None = None, checksums: dict[str, str] | None = None) -> None:
  """Saves a checkpoint (asynchronously) with its arrays' checksums (`checksum.of_state(state)` unless the
  caller has them); `main_metric` (the eval metric at this very step) lets it compete for best."""
  metrics = None if main_metric is None else {BEST_KEY: float(main_metric)}
  data_state = {**data_state, "checksums": checksums if checksums is not None else checksum.of_state(state)}
  mngr.save(step, metrics=metrics, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state),
      config=ocp.args.JsonSave(json.loads(config_lib.to_json(config)))))


class CheckpointDamaged(Exception):
  """A checkpoint's files do not hold what was saved (checksum mismatch or unusable data item)."""


def _first_line(e: Exception) -> str:
  # The storage layer's message can run to kilobytes of JSON: its first line says enough.
  return f"{type(e).__name__}: {first_line(e, 160)}"


def set_aside(mngr: ocp.CheckpointManager, step: int) -> str:
  """Moves a damaged checkpoint out of the manager's sight (`<step>.corrupt`), so the run can write that step
  again; returns where it went. The files are kept for a post-mortem."""
  directory = os.path.join(str(mngr.directory), str(step))
  target = f"{directory}.corrupt"
  n = 1
  while os.path.exists(target):
    n += 1
    target = f"{directory}.corrupt{n}"
  if jax.process_index() == 0:  # one process moves it; the others wait for the move before they look again
    os.rename(directory, target)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(f"jgen_set_aside_{step}")
  mngr.reload()
  return target


def restore_latest(mngr: ocp.CheckpointManager, abstract_for, steps=None, *, heal: bool = False, accept=None):
  """Restores the newest readable checkpoint of `steps` (default all): (step, state, data_state), or None if
  there are none.

  `abstract_for(data_state) -> (abstract_state, shardings)` gives the state's shapes (they may depend on the
  data item); `accept(data_state)` may raise to reject a checkpoint (an iterator state that does not load).
  A checkpoint that fails to restore, fails its checksum or is rejected is reported in one line and the
  previous one is used; with `heal`, once an older one restores the damaged newer ones are set aside. If
  checkpoints exist but none restores (code that no longer matches them, say), that is a UserError: nothing
  is moved and nothing starts over on top of them.
  """
  steps = sorted(mngr.all_steps() if steps is None else steps, reverse=True)
  damaged = []
  for step in steps:
    try:
      data = mngr.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore()))["data"]
      if not isinstance(data, dict):
        raise CheckpointDamaged("its data item is not a JSON object")
      abstract, shardings = abstract_for(data)
      state = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(sharding.placed_abstract(abstract, shardings))))["state"]
      if "checksums" in data:
        problem = checksum.mismatch(state, data["checksums"])
        if problem:
          raise CheckpointDamaged(problem)
      if accept is not None:
        accept(data)
    except UserError:
      raise
    except Exception as e:  # a torn, corrupt or tampered checkpoint: try the previous one
      damaged.append((step, _first_line(e)))
      continue
    for bad, reason in damaged:
      where = f"moved to {set_aside(mngr, bad)}" if heal else "left in place"
      notice(f"checkpoint at step {bad} is damaged ({reason}); {where}; using step {step}")
    return step, state, data
  if damaged:
    step, reason = damaged[0]
    raise UserError(f"no checkpoint in {str(mngr.directory)!r} restores (step {step}: {reason}); nothing was "
                    f"changed: restore a backup, or pass a new --workdir to start over")
  return None


def _read_any_data(mngr, abstract_for) -> None:
  """Calls `abstract_for` on the newest data item that reads (only to learn the run's spec)."""
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      abstract_for(mngr.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore()))["data"])
      return
    except Exception:  # damaged: restore_latest reports it when it gets there
      continue
  raise UserError(f"no checkpoint in {str(mngr.directory)!r} has a readable data item: restore a backup or retrain")


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with (from its newest checkpoint)."""
  if not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir!r} does not exist: train a model there first with `jgen train CONFIG --workdir {workdir}`")
  if not os.access(workdir, os.R_OK | os.X_OK):
    raise UserError(f"workdir {workdir!r} is not readable: check its permissions")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise UserError(f"workdir {workdir!r} holds no jgen run (no config.json): train one with `jgen train CONFIG --workdir {workdir}`")
  try:
    with open(path) as f:
      saved = config_lib.from_json(f.read())
  except (OSError, ValueError, TypeError, AttributeError) as e:
    raise UserError(f"workdir {workdir!r} has an unreadable config.json ({type(e).__name__}: "
                    f"{first_line(e)}): restore it from a checkpoint's config item "
                    f"(checkpoints/<step>/config/metadata) or retrain") from None
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

  if which not in ("latest", "best"):
    raise UserError(f"--checkpoint must be 'latest' or 'best', got {which!r}")
  config = read_config(workdir)
  config_lib.apply_overrides(config, overrides)
  if not os.path.isdir(checkpoint_dir(workdir)):
    raise UserError(f"workdir {workdir!r} has no checkpoint yet: let `jgen train` run to its first checkpoint")
  mngr = manager(workdir, keep=config.train.keep, create=False)
  if not mngr.all_steps():
    raise UserError(f"workdir {workdir!r} has no checkpoint yet: let `jgen train` run to its first checkpoint")
  built = {}

  def abstract_for(data):
    if "spec" not in data or "batch_spec" not in data:
      raise CheckpointDamaged("its data item has no data spec (an older jgen, or damaged)")
    if "family" not in built:
      spec = DataSpec.from_json(data["spec"])
      family = registry.build(config, spec)
      batch = spec.example_batch(data["batch_spec"]["x"][0][0])
      abstract = jax.eval_shape(lambda rng, b: family.init(rng, to_model_input(b)), jax.random.key(0), batch)
      built.update(family=family, abstract=abstract,
                   shardings=sharding.state_sharding(sharding.make_mesh(config.mesh), abstract, family))
    return built["abstract"], built["shardings"]

  steps = None  # the newest readable checkpoint, falling back past damaged ones
  if which == "best":
    _read_any_data(mngr, abstract_for)  # builds the family, whose config says how it ranks checkpoints
    best_mode = built["family"].best_mode
    if best_mode is None:
      raise UserError(f"{config.model.name} runs keep no best checkpoint (this run ranks nothing by an eval "
                      f"metric): use --checkpoint latest")
    mngr = manager(workdir, keep=config.train.keep, best_mode=best_mode, create=False)
    if not any(mngr.metrics(s) for s in mngr.all_steps()):
      raise UserError(f"workdir {workdir!r} has no checkpoint written at an eval step yet: use --checkpoint latest")
    steps = [mngr.best_step()]  # exactly the best: no fallback to another step
  found = restore_latest(mngr, abstract_for, steps)
  if found is None:
    raise UserError(f"no readable checkpoint in {checkpoint_dir(workdir)!r}")
  return config, built["family"], found[1]


def batch_spec(batch: dict) -> dict:
  return {k: [list(v.shape), str(v.dtype)] for k, v in batch.items()}


def example_batch(spec: dict) -> dict:
  import numpy as np
  return {k: np.zeros(shape, dtype) for k, (shape, dtype) in spec.items()}
