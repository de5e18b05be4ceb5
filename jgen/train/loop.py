"""The one training loop every family runs on.

Mesh from the config; the train state created already sharded (`eval_shape`,
then a jitted init with `out_shardings`); each batch placed on the mesh; jitted
steps with explicit shardings and donation; periodic logging, evaluation,
sample grids and checkpoints. The step's random key is `fold_in(key, step)` and
the data iterator state is checkpointed with the train state, so a resumed run
repeats the exact batches, random numbers and losses of an uninterrupted one.
"""

import functools
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import config as config_lib
from jgen import registry
from jgen.data import pipeline, sources
from jgen.data.outliers import WithOutliers
from jgen.errors import UserError
from jgen.train import checkpoint, sharding
from jgen.train.metrics import MetricWriter
from jgen.train.progress import Progress


class TrainingDiverged(UserError):
  """The loss became NaN or infinite; the last good checkpoint is kept."""


def prepare_workdir(workdir: str, config) -> bool:
  """Checks the workdir can hold this run; returns True if it holds an earlier run of it to resume.

  Writes nothing: every reason to refuse is found before the run touches disk.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir!r} exists and is not a directory: pass a new or existing run directory")
  if not os.path.exists(workdir):
    parent = os.path.dirname(os.path.abspath(workdir))
    while not os.path.exists(parent):
      parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
      raise UserError(f"cannot create workdir {workdir!r}: {parent!r} is not writable")
    return False
  if not os.access(workdir, os.R_OK | os.W_OK | os.X_OK):
    raise UserError(f"workdir {workdir!r} is not readable and writable: fix its permissions or pass another --workdir")
  saved_path = os.path.join(workdir, "config.json")
  if not os.path.exists(saved_path):
    if os.listdir(workdir):
      raise UserError(f"workdir {workdir!r} is not empty and holds no jgen run: pass a new --workdir")
    return False
  try:
    with open(saved_path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"workdir {workdir!r} has an unreadable config.json ({e}): pass a new --workdir") from None
  current = json.loads(config_lib.to_json(config))
  # Only the `train` block (steps, logging, evaluation cadence) may change on resume.
  differ = sorted(k for k in set(saved) | set(current) if k not in ("train", "config_file") and saved.get(k) != current.get(k))
  if differ:
    raise UserError(f"workdir {workdir!r} holds a run of a different config (differs in: {', '.join(differ)}); "
                    f"pass a new --workdir, or the same config to resume")
  return True


def _eval_fn(family):
  def fn(state, batch, mask, rng):
    per_example = family.eval_step(state, batch, rng)
    mask = mask.astype(jnp.float32)
    sums = {k: jnp.sum(jnp.reshape(v, mask.shape) * mask) for k, v in per_example.items()}
    return sums, jnp.sum(mask)
  return fn


class Runner:
  """Holds the compiled pieces of a run: mesh, family, shardings and jitted functions."""

  def __init__(self, config: ml_collections.ConfigDict, devices=None):
    self.config = config
    self.mesh = sharding.make_mesh(config.get("mesh", ml_collections.ConfigDict()), devices)
    self.family = registry.build(config)
    self.batch_sharding = sharding.batch_sharding(self.mesh)
    self.replicated = sharding.replicated(self.mesh)
    self.batch_size = sharding.global_batch_size(config.data.batch_size, self.mesh)
    self.data_kwargs = dict(source_dir=config.data.get("source_dir") or None)
    self.key = jax.random.key(config.train.get("seed", 0))
    self.init_key, self.train_key, self.eval_key, self.sample_key = jax.random.split(self.key, 4)

  def setup(self, example_batch):
    batch = sharding.put_batch(example_batch, self.batch_sharding)
    self.abstract_state = jax.eval_shape(self.family.init, self.init_key, batch)
    self.state_sharding = sharding.state_sharding(self.mesh, self.abstract_state)
    self.init = jax.jit(self.family.init, out_shardings=self.state_sharding)
    self.step = jax.jit(self.family.train_step,
                        in_shardings=(self.state_sharding, self.batch_sharding, self.replicated),
                        out_shardings=(self.state_sharding, self.replicated), donate_argnums=(0,))
    self.eval = jax.jit(_eval_fn(self.family),
                        in_shardings=(self.state_sharding, self.batch_sharding, self.batch_sharding, self.replicated),
                        out_shardings=self.replicated)
    return batch

  @functools.cache
  def _sample_fn(self, n: int):
    return jax.jit(functools.partial(self.family.sample, n=n), out_shardings=self.replicated)

  def sample(self, state, rng, n):
    """`n` samples, gathered to the host (the jitted sampler is compiled once per `n`)."""
    return np.asarray(self._sample_fn(n)(state, rng))

  def evaluate(self, state, split="test", max_batches=-1) -> dict:
    """Means of the family's per-example eval metrics over a split (or its first batches)."""
    source = sources.load(self.config.data.name, split, **self.data_kwargs)
    eval_bs = self.config.data.get("eval_batch_size", self.batch_size)
    eval_bs = math.ceil(eval_bs / self.mesh.size) * self.mesh.size
    totals, count = {}, 0.0
    batches = pipeline.eval_batches(source, batch_size=eval_bs,
                                    process_index=jax.process_index(), process_count=jax.process_count())
    for i, (batch, mask) in enumerate(batches):
      if 0 <= max_batches <= i:
        break
      batch = sharding.put_batch(batch, self.batch_sharding)
      mask = sharding.put_batch({"m": mask}, self.batch_sharding)["m"]
      sums, n = self.eval(state, batch, mask, jax.random.fold_in(self.eval_key, i))
      for k, v in sums.items():
        totals[k] = totals.get(k, 0.0) + float(v)
      count += float(n)
    return {k: v / max(count, 1.0) for k, v in totals.items()}


def train(config, workdir: str, *, show_progress: bool = True, devices=None) -> dict:
  """Trains (or resumes) the run of `config` in `workdir`; returns the last logged metrics."""
  resuming = prepare_workdir(workdir, config)
  runner = Runner(config, devices)
  is_main = jax.process_index() == 0
  train_source = sources.load(config.data.name, "train", **runner.data_kwargs)
  if config.data.get("outlier_fraction", 0.0) > 0.0:
    train_source = WithOutliers(train_source, config.data.outlier_fraction, config.data.get("outlier_scale", 10.0),
                                seed=config.train.get("seed", 0))
  info = sources.info(config.data.name)
  train_it = pipeline.train_iterator(train_source, batch_size=runner.batch_size,
                                     seed=config.train.get("seed", 0), process_index=jax.process_index(),
                                     process_count=jax.process_count())
  fresh_state = train_it.get_state()
  example = next(train_it)
  train_it.set_state(fresh_state)
  runner.setup(example)

  os.makedirs(workdir, exist_ok=True)
  mngr = checkpoint.manager(workdir, keep=config.train.get("keep", 3), best_mode=runner.family.best_mode)
  restored = checkpoint.restore_latest(mngr, runner.abstract_state, runner.state_sharding) if resuming else None
  train_seconds = 0.0
  if restored is not None:
    start, state, data_state = restored
    train_it.set_state(data_state["iterator"])
    train_seconds = data_state.get("train_seconds", 0.0)
  else:
    start = 0
    state = runner.init(runner.init_key, sharding.put_batch(example, runner.batch_sharding))
  if is_main:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config_lib.to_json(config))

  writer = MetricWriter(workdir, resume_step=start, enabled=is_main)
  total = config.train.steps
  progress = Progress(start, total, enabled=show_progress and is_main)
  if restored is not None:
    progress.message(f"resuming {workdir} from step {start}")
  log_every, eval_every, ckpt_every = (config.train.get(k, 0) for k in ("log_every", "eval_every", "ckpt_every"))
  spec = checkpoint.batch_spec(example)
  last = {}
  t0 = time.perf_counter()
  eval_at = (None, None)  # (step, main metric) of the latest eval: checkpoints at that step rank for best
  for step in range(start + 1, total + 1):
    batch = sharding.put_batch(next(train_it), runner.batch_sharding)
    state, metrics = runner.step(state, batch, jax.random.fold_in(runner.train_key, step))
    final = step == total
    if (log_every and step % log_every == 0) or final:
      scalars = {f"train/{k}": float(v) for k, v in metrics.items()}
      if not all(math.isfinite(v) for v in scalars.values()):
        bad = [k for k, v in scalars.items() if not math.isfinite(v)]
        raise TrainingDiverged(f"training diverged at step {step}: {', '.join(bad)} is not finite; "
                               f"the last good checkpoint (step {mngr.latest_step()}) is kept; lower optim.lr "
                               f"or set optim.grad_clip")
      scalars["train/steps_per_s"] = progress.update(step, scalars)
      writer.write(step, scalars)
      last.update(scalars)
    if (eval_every and step % eval_every == 0) or final:
      results = runner.evaluate(state, max_batches=config.train.get("eval_batches", -1))
      eval_at = (step, results.get(runner.family.main_metric))
      scalars = {f"eval/{k}": v for k, v in results.items()}
      writer.write(step, scalars)
      last.update(scalars)
      progress.message(f"step {step} eval " + " ".join(f"{k}={v:.4f}" for k, v in results.items()))
      if is_main:
        write_samples(runner, state, info, workdir, step)
    if (ckpt_every and step % ckpt_every == 0) or final:
      elapsed = train_seconds + time.perf_counter() - t0
      main = eval_at[1] if eval_at[0] == step and runner.family.best_mode else None
      main = main if main is not None and math.isfinite(main) else None
      checkpoint.save(mngr, step, state, {"iterator": train_it.get_state(), "batch_spec": spec,
                                          "train_seconds": elapsed}, config, main_metric=main)
  mngr.wait_until_finished()
  train_seconds += time.perf_counter() - t0
  progress.close()
  writer.close()
  if is_main:
    write_run_summary(workdir, runner, state, train_seconds)
  return last


def write_samples(runner: Runner, state, info: dict, workdir: str, step: int) -> str | None:
  from jgen.eval import plots

  n = runner.config.train.get("sample_num", 64)
  try:
    x = runner.sample(state, jax.random.fold_in(runner.sample_key, step), n)
  except NotImplementedError:  # not a generative model (the FID feature classifier)
    return None
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
  if info.get("kind") == "image":
    plots.save_image_grid(np.clip(x, 0.0, 1.0), path, title=f"{runner.config.model.name} step {step}")
  elif info.get("kind") == "points":
    plots.save_points(x, path)
  else:
    return None
  return path


def write_run_summary(workdir, runner: Runner, state, train_seconds: float) -> None:
  device = jax.devices()[0]
  summary = {
      "model": runner.config.model.name,
      "family": runner.family.family,
      "dataset": runner.config.data.name,
      "steps": int(state.step),
      "train_seconds": round(train_seconds, 2),
      "device": f"{len(jax.devices())}x {device.device_kind}",
      "parameters": int(runner.family.num_params(state)),
  }
  with open(os.path.join(workdir, "run.json"), "w") as f:
    json.dump(summary, f, indent=2)
