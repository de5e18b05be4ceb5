"""A run's workdir across restarts: whether it may hold this run, how the run resumes, what a full disk says.

A workdir holds one run. The same command on it resumes from the newest good checkpoint (damaged ones set
aside, see jgen.train.checkpoint); only the `train` and `optim` blocks may change in between, so a diverged run
is resumed with a lower learning rate. A full disk or an unwritable workdir ends the run in one line, with the
last good checkpoint kept (orbax commits a checkpoint only once it is whole).
"""

import copy
import errno
import json
import os

import jax
import ml_collections

from jgen import config as config_lib
from jgen import registry
from jgen.data import spec as spec_lib
from jgen.errors import UserError, notice
from jgen.train import checkpoint, sharding, workdir_lock


# Blocks that may change when a run resumes: the schedule of logging/eval/saving, and the optimizer (a
# diverged run is resumed with a lower lr or with grad_clip); the rest would make it another run.
RESUMABLE_CHANGES = ("train", "optim", "config_file")


def prepare(workdir: str, config) -> dict | None:
  """Checks the workdir can hold this run; returns the saved config (a JSON dict) of the earlier run of it
  to resume, or None for a new run.

  Writes nothing: every reason to refuse is found before the run touches disk.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir!r} exists and is not a directory: pass a new or existing run directory")
  if not os.path.exists(workdir):
    parent = os.path.dirname(os.path.abspath(workdir))
    while not os.path.exists(parent):
      parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
      raise UserError(f"cannot create workdir {workdir!r}: {parent!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
      raise UserError(f"cannot create workdir {workdir!r}: {parent!r} is not writable")
    return None
  if not os.access(workdir, os.R_OK | os.W_OK | os.X_OK):
    raise UserError(f"workdir {workdir!r} is not readable and writable: fix its permissions or pass another --workdir")
  saved_path = os.path.join(workdir, "config.json")
  if not os.path.exists(saved_path):
    # What a run killed before it wrote its config leaves: the lock, maybe an empty checkpoints/.
    leftovers = {workdir_lock.LOCK_NAME, "checkpoints"}
    ckpt = os.path.join(workdir, "checkpoints")
    if set(os.listdir(workdir)) - leftovers or (os.path.isdir(ckpt) and os.listdir(ckpt)):
      raise UserError(f"workdir {workdir!r} is not empty and holds no jgen run: pass a new --workdir")
    return None
  try:
    with open(saved_path) as f:
      saved = json.load(f)
    if not isinstance(saved, dict):
      raise ValueError("not a JSON object")
  except (OSError, ValueError) as e:
    raise UserError(f"workdir {workdir!r} has an unreadable config.json ({e}): pass a new --workdir") from None
  current = json.loads(config_lib.to_json(config))
  differ = sorted(k for k in set(saved) | set(current)
                  if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))
  if differ:
    raise UserError(f"workdir {workdir!r} holds a run of a different config (differs in: {', '.join(differ)}); "
                    f"pass a new --workdir, or the same config to resume (only train.* and optim.* may change)")
  return saved


def _changes(saved: dict, current: dict, prefix: str) -> list[str]:
  """`key: old -> new` for every leaf that differs between two JSON config blocks."""
  out = []
  for k in sorted(set(saved) | set(current)):
    a, b = saved.get(k), current.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _changes(a, b, f"{prefix}{k}.")
    elif a != b:
      out.append(f"{prefix}{k}: {a} -> {b}")
  return out


def restore(runner, mngr, saved: dict, train_it):
  """(step, state, data_state) of the newest good checkpoint (damaged newer ones set aside), or None.

  When the optimizer settings changed since the checkpoint, the state is read with the saved optimizer's
  shapes; optimizer state whose structure the change alters (another optimizer, warm-up or clipping turned
  on) starts afresh, and one line says what changed.
  """
  current = json.loads(config_lib.to_json(runner.config))
  changes = _changes(saved.get("optim", {}), current.get("optim", {}), "optim.")
  abstract, shardings = runner.abstract_state, runner.state_sharding
  if changes:
    old_config = copy.deepcopy(runner.config)
    with old_config.unlocked():
      old_config.optim = ml_collections.ConfigDict(saved["optim"])
    old_family = registry.build(old_config, runner.spec)
    abstract = jax.eval_shape(lambda rng, b: old_family.init(rng, spec_lib.to_model_input(b)), runner.init_key,
                              runner.example_batch)
    shardings = sharding.state_sharding(runner.mesh, abstract, old_family)
  found = checkpoint.restore_latest(mngr, lambda data: (abstract, shardings), heal=True,
                                    accept=lambda data: train_it.set_state(data["iterator"]))
  if found is None or not changes:
    return found
  step, state, data = found
  fresh = [name for name in state.opt_state
           if jax.tree.structure(state.opt_state[name]) != jax.tree.structure(runner.abstract_state.opt_state[name])
           or jax.tree.map(lambda a: (a.shape, a.dtype), state.opt_state[name])
           != jax.tree.map(lambda a: (a.shape, a.dtype), runner.abstract_state.opt_state[name])]
  if fresh:
    init_opt = jax.jit(lambda params: {n: runner.family.optimizers[n].init(params[n]) for n in fresh})
    state = state.replace(opt_state={**state.opt_state, **init_opt(state.params)})
  state = jax.device_put(state, runner.state_sharding)
  restart = f"; the optimizer state of {', '.join(fresh)} starts afresh (its structure changed)" if fresh else ""
  notice(f"resuming from step {step} with changed optimizer settings ({'; '.join(changes)}){restart}")
  return step, state, data


_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
# The same errors as the storage layer words them (it raises ValueError with the OS message inside).
_DISK_MESSAGES = ("No space left on device", "Read-only file system", "Permission denied", "Disk quota exceeded")


def raise_if_disk_error(e: BaseException, workdir: str, mngr) -> None:
  """A full disk or an unwritable workdir, anywhere in `e`'s chain, becomes one line; the last good checkpoint
  stays (orbax commits a checkpoint only once it is whole)."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    text = str(e)
    known = [m for m in _DISK_MESSAGES if m in text]
    if (isinstance(e, OSError) and e.errno in _DISK_ERRNOS) or known:
      reason = e.strerror if isinstance(e, OSError) and e.strerror else known[0]
      try:  # a save still in flight may yet complete: it counts once it has (or failed)
        mngr.wait_until_finished()
      except Exception:  # noqa: BLE001 -- it failed too: the step before it is the last good one
        pass
      try:
        mngr.reload()
        good = mngr.latest_step()
      except Exception:  # the directory itself may be unreadable now
        good = None
      kept = f"the last good checkpoint (step {good}) is kept" if good is not None else "no checkpoint was written"
      raise UserError(f"cannot write to workdir {workdir!r} ({reason}); {kept}: free space or fix permissions, "
                      f"then run the same command to resume") from None
    e = e.__cause__ or e.__context__


def final_metrics(workdir: str) -> dict:
  """The last value of every metric a finished run logged (what a rerun of it reports)."""
  from jgen.train import metrics as metrics_lib

  path = os.path.join(workdir, "metrics.jsonl")
  last = {}
  for row in metrics_lib.read(path) if os.path.exists(path) else []:
    last.update({k: v for k, v in row.items() if k != "step"})
  return last
