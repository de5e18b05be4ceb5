"""The one training loop every family runs on.

Mesh from the config; the train state created already sharded (`eval_shape`,
then a jitted init with `out_shardings`); each batch placed on the mesh (uint8
images, turned into floats on the device) one step ahead; jitted steps with
explicit shardings and donation; periodic logging, evaluation on the validation
split (plus the in-loop evaluators of `train.evals`), sample grids and
checkpoints. The step's random key is `fold_in(key, step)`, computed inside the
jitted step, and the data iterator state is checkpointed with the train state,
so a resumed run repeats the exact batches, random numbers and losses of an
uninterrupted one. Finiteness is tracked on the device every step and the state
is checked before every checkpoint: a NaN never reaches disk.

With `train.steps_per_call = s > 1` one jitted call runs s steps (a `lax.scan`
over s stacked batches), so a small model is not bound by dispatching one call a
step; a stretch shorter than s before a log, eval or checkpoint step (or the end)
runs step by step, so every step those happen at is the same as with s = 1, and
the batches, keys and results are those of s single steps. It is for accelerators,
where a small model's step is shorter than its dispatch: XLA:CPU runs convolutions
inside a loop several times slower than the same step alone (benchmarks/README.md).
"""

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
from jgen.data import spec as spec_lib
from jgen.data.outliers import WithOutliers
from jgen.errors import UserError
from jgen.train import checkpoint, checksum, compile_ahead, compile_options, gc_pause, sampling, sharding, workdir_lock
from jgen.train import workdir as workdir_lib
from jgen.train.metrics import MetricWriter
from jgen.train.progress import Progress


class TrainingDiverged(UserError):
  """The loss became NaN or infinite; the last good checkpoint is kept."""


def _step_fn(family, train_key):
  """The jitted train step: the step's key is folded in on the device; `first_bad` records the first step
  whose metrics were not finite (0 while all are), so divergence is caught between log steps too."""
  def fn(state, batch, first_bad):
    step = state.step + 1
    state, metrics = family.train_step(state, spec_lib.to_model_input(batch), jax.random.fold_in(train_key, step))
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(metrics)]))
    first_bad = jnp.where((first_bad == 0) & ~finite, step, first_bad)
    return state, metrics, first_bad
  return fn


def _multi_step_fn(step_fn):
  """s steps in one call: a scan of the step over s stacked batches; the metrics of the last step come back."""
  def fn(state, batches, first_bad):
    def body(carry, batch):
      state, first_bad = carry
      state, metrics, first_bad = step_fn(state, batch, first_bad)
      return (state, first_bad), metrics
    (state, first_bad), metrics = jax.lax.scan(body, (state, first_bad), batches)
    return state, jax.tree.map(lambda m: m[-1], metrics), first_bad
  return fn


def _eval_fn(family, eval_key):
  def fn(state, batch, mask, index):
    per_example = family.eval_step(state, spec_lib.to_model_input(batch), jax.random.fold_in(eval_key, index))
    mask = mask.astype(jnp.float32)
    sums = {k: jnp.sum(jnp.reshape(v, mask.shape) * mask) for k, v in per_example.items()}
    return sums, jnp.sum(mask)
  return fn


class Runner:
  """Holds the compiled pieces of a run: mesh, family, shardings and jitted functions."""

  def __init__(self, config: ml_collections.ConfigDict, devices=None):
    self.config = config
    self.mesh = sharding.make_mesh(config.mesh, devices)
    self.spec = spec_lib.from_dataset(config.data)
    self.family = registry.build(config, self.spec)
    self.k = config.train.batches_per_step
    self.steps_per_call = config.train.steps_per_call
    self.batch_sharding = sharding.batch_sharding(self.mesh)
    self.train_batch_sharding = sharding.batch_sharding(self.mesh, int(self.k > 1))
    self.call_batch_sharding = sharding.batch_sharding(self.mesh, 1 + int(self.k > 1))
    self.replicated = sharding.replicated(self.mesh)
    self.batch_size = sharding.global_batch_size(config.data.batch_size, self.mesh)
    self.eval_batch_size = math.ceil((config.data.eval_batch_size or self.batch_size) / self.mesh.size) * self.mesh.size
    self.data_kwargs = dict(source_dir=config.data.source_dir or None, validation_size=config.data.validation_size)
    self.key = jax.random.key(config.train.seed)
    self.init_key, self.train_key, self.eval_key, self.sample_key = jax.random.split(self.key, 4)
    self.sampler = sampling.Sampler(self.family, self.mesh) if self.family.generative else None

  @gc_pause.paused()  # tracing: the networks' abstract state and the eval keys
  def setup(self, example_batch):
    """Compiles init, step and eval for batches like `example_batch` (one update's batch, unstacked)."""
    batch = sharding.put_batch(example_batch, self.batch_sharding)
    self.example_batch = batch
    init = lambda rng, b: self.family.init(rng, spec_lib.to_model_input(b))
    self.abstract_state = jax.eval_shape(init, self.init_key, batch)
    self.state_sharding = sharding.state_sharding(self.mesh, self.abstract_state, self.family)
    platform = self.mesh.devices.flat[0].platform
    step_opts = compile_options.step_options(platform)  # XLA:CPU: Eigen convolutions, not YNNPACK's
    self.init = jax.jit(init, in_shardings=(self.replicated, self.batch_sharding), out_shardings=self.state_sharding,
                        compiler_options=compile_options.init_options(platform))
    step_fn = _step_fn(self.family, self.train_key)
    outs = (self.state_sharding, self.replicated, self.replicated)
    self.step = jax.jit(step_fn, in_shardings=(self.state_sharding, self.train_batch_sharding, self.replicated),
                        out_shardings=outs, donate_argnums=(0,), compiler_options=step_opts)
    self.multi_step = jax.jit(_multi_step_fn(step_fn),
                              in_shardings=(self.state_sharding, self.call_batch_sharding, self.replicated),
                              out_shardings=outs, donate_argnums=(0,), compiler_options=step_opts)
    self.eval = jax.jit(_eval_fn(self.family, self.eval_key),
                        in_shardings=(self.state_sharding, self.batch_sharding, self.batch_sharding, self.replicated),
                        out_shardings=self.replicated, compiler_options=step_opts)
    self.train_step = self.step  # the single step `run` calls: `step`, or its compile started ahead
    self.eval_keys = set(jax.eval_shape(lambda s, b: self.family.eval_step(s, spec_lib.to_model_input(b),
                                                                            self.eval_key),
                                        self.abstract_state, batch))
    return batch

  def compile_step_ahead(self, loader_batch, first_bad) -> None:
    """Starts compiling the single train step for a loader batch like `loader_batch` in a background thread, so
    that the compile overlaps the restore or init; `run` calls it once compiled (jgen/train/compile_ahead.py)."""
    state = sharding.placed_abstract(self.abstract_state, self.state_sharding)
    self.train_step = compile_ahead.CompiledAhead(self.step, state, self.put_train_batch(loader_batch), first_bad)

  def _unstack(self, batch):
    if self.k > 1:  # [k * B, ...] -> [k, B, ...]
      batch = {key: v.reshape((self.k, v.shape[0] // self.k) + v.shape[1:]) for key, v in batch.items()}
    return batch

  def put_train_batch(self, batch):
    """A loader batch on the mesh; with k batches per step, [k * B, ...] becomes [k, B, ...] (split on B)."""
    return sharding.put_batch(self._unstack(batch), self.train_batch_sharding)

  def put_call_batches(self, batches):
    """The loader batches of s steps as one [s, ...] array per key on the mesh, for `multi_step`."""
    batches = [self._unstack(b) for b in batches]
    return sharding.put_batch({key: np.stack([b[key] for b in batches]) for key in batches[0]},
                              self.call_batch_sharding)

  def run(self, state, placed, first_bad):
    """One unit of steps: a single step, or `multi_step` where `placed` holds several steps' batches."""
    return (self.multi_step if placed[0] > 1 else self.train_step)(state, placed[1], first_bad)

  def read_unit(self, train_it, steps: int):
    """The next `steps` steps' batches from the loader, placed on the mesh: (steps, arrays)."""
    if steps == 1:
      return 1, self.put_train_batch(next(train_it))
    return steps, self.put_call_batches([next(train_it) for _ in range(steps)])

  def evaluate(self, state, split="validation", max_batches=-1) -> dict:
    """Means of the family's per-example eval metrics over a split (or its first batches)."""
    source = sources.load(self.config.data.name, split, **self.data_kwargs)
    totals, count = {}, 0.0
    batches = pipeline.eval_batches(source, batch_size=self.eval_batch_size,
                                    process_index=jax.process_index(), process_count=jax.process_count())
    for i, (batch, mask) in enumerate(batches):
      if 0 <= max_batches <= i:
        break
      batch = sharding.put_batch(batch, self.batch_sharding)
      mask = sharding.put_batch({"m": mask}, self.batch_sharding)["m"]
      sums, n = self.eval(state, batch, mask, jnp.int32(i))
      for k, v in sums.items():
        totals[k] = totals.get(k, 0.0) + float(v)
      count += float(n)
    return {k: v / max(count, 1.0) for k, v in totals.items()}


def _check_main_metric(runner: Runner, evaluator_keys: set) -> None:
  family = runner.family
  if family.best_mode is None:
    return
  if family.main_metric not in runner.eval_keys | evaluator_keys:
    known = ", ".join(sorted(runner.eval_keys | evaluator_keys))
    raise UserError(f"{runner.config.model.name}: main metric {family.main_metric!r} is reported by neither its "
                    f"eval_step nor train.evals (they report {known}); add the evaluator to train.evals "
                    f"(e.g. train.evals='fid:2000')")


def train(config, workdir: str, *, show_progress: bool = True, devices=None) -> dict:
  """Trains (or resumes) the run of `config` in `workdir`; returns the last logged metrics."""
  from jgen.eval.in_loop import SampleQuality, metric_names

  saved = workdir_lib.prepare(workdir, config)
  runner = Runner(config, devices)
  family = runner.family
  is_main = jax.process_index() == 0
  train_source = sources.load(config.data.name, "train", **runner.data_kwargs)
  if config.data.outlier_fraction > 0.0:
    train_source = WithOutliers(train_source, config.data.outlier_fraction, config.data.outlier_scale,
                                seed=config.train.seed)
  train_it = pipeline.train_iterator(train_source, batch_size=runner.batch_size * runner.k, seed=config.train.seed,
                                     process_index=jax.process_index(), process_count=jax.process_count())
  fresh_state = train_it.get_state()
  example = next(train_it)
  train_it.set_state(fresh_state)
  first = {k: v[:len(v) // runner.k] for k, v in example.items()}
  runner.setup(first)
  evals = config_lib.parse_evals(config.train.evals)
  evaluator = None
  if evals:
    from jgen.eval.suite import load_split

    real, _ = load_split(config.data.name, "validation", limit=max(evals.values()), **runner.data_kwargs)
    evaluator = SampleQuality(evals, family, runner.sampler, real)
  _check_main_metric(runner, metric_names(evals))

  with workdir_lock.held(workdir, enabled=is_main):  # one run per workdir; refused before writing
    if is_main:  # the run's identity comes first, so a run killed at any later moment is recognised
      write_atomically(os.path.join(workdir, "config.json"), config_lib.to_json(config))
    os.makedirs(checkpoint.checkpoint_dir(workdir), exist_ok=True)
    mngr = checkpoint.manager(workdir, keep=config.train.keep, best_mode=family.best_mode)
    first_bad = jax.device_put(jnp.int32(0), runner.replicated)  # placed as the step returns it: one compile
    latest = mngr.latest_step()
    # Steps left: compile the step while restoring or initialising. With several steps a call the first call
    # may be the scanned one, which stays jit's to compile when it comes.
    if runner.steps_per_call == 1 and (latest is None or latest < config.train.steps):
      runner.compile_step_ahead(example, first_bad)
    with gc_pause.paused():  # the init's trace
      restored = workdir_lib.restore(runner, mngr, saved, train_it) if saved is not None else None
      train_seconds = 0.0
      if restored is not None:
        start, state, data_state = restored
        train_seconds = data_state.get("train_seconds", 0.0)
      else:
        start = 0
        train_it.set_state(fresh_state)
        state = runner.init(runner.init_key, sharding.put_batch(first, runner.batch_sharding))

    writer = MetricWriter(workdir, resume_step=start, enabled=is_main)
    total = config.train.steps
    progress = Progress(start, total, enabled=show_progress and is_main)
    if restored is not None:
      progress.message(f"resuming {workdir} from step {start}")
    log_every, eval_every, ckpt_every = config.train.log_every, config.train.eval_every, config.train.ckpt_every
    data_facts = {"batch_spec": checkpoint.batch_spec(first), "spec": runner.spec.to_json()}
    last = {}
    t0 = time.perf_counter()
    eval_at = (None, None)  # (step, main metric) of the latest eval: checkpoints at that step rank for best

    def check_finite(step, bad_flag, state_finite=True):
      bad = int(bad_flag)
      if bad == 0 and state_finite:
        return
      where = f"at step {bad}" if bad else f"by step {step} (the parameters)"
      mngr.wait_until_finished()
      good = mngr.latest_step()
      kept = f"the last good checkpoint (step {good}) is kept" if good is not None else "no checkpoint was written"
      raise TrainingDiverged(f"training diverged {where}: a loss or metric is not finite; {kept}; lower the lr or "
                             f"clip gradients and run the same command again, e.g. with --set optim.lr=... "
                             f"--set optim.grad_clip=1.0")

    def is_event(step):  # a step something happens after: its state must exist on its own
      return step == total or any(every and step % every == 0 for every in (log_every, eval_every, ckpt_every))

    def unit_after(step):  # how many steps the call after `step` runs: s, unless an event comes sooner
      s = min(runner.steps_per_call, total - step)
      return s if s > 1 and not any(is_event(step + i) for i in range(1, s)) else 1

    def write_log(step, metrics, bad_flag):
      check_finite(step, bad_flag)
      scalars = {f"train/{k}": float(v) for k, v in metrics.items()}
      scalars["train/steps_per_s"] = progress.update(step, scalars)
      writer.write(step, scalars)
      last.update(scalars)

    pending = None  # (step, metrics, first_bad) of a log step, written once the next call is on its way
    try:
      placed = runner.read_unit(train_it, unit_after(start)) if start < total else None
      step = start
      while step < total:
        state, metrics, first_bad = runner.run(state, placed, first_bad)
        step += placed[0]
        final = step == total
        saving = (ckpt_every and step % ckpt_every == 0) or final
        # The iterator state after this unit's batches, taken before the next unit is read ahead.
        iterator_state = train_it.get_state() if saving else None
        if not final:
          placed = runner.read_unit(train_it, unit_after(step))  # placed while the step runs
        if pending is not None:  # the previous log step's metrics, ready by now: read while this call runs
          write_log(*pending)
          pending = None
        if (log_every and step % log_every == 0) or final:
          pending = (step, metrics, first_bad)
          for leaf in jax.tree.leaves(pending[1:]):
            leaf.copy_to_host_async()
          if final or saving or (eval_every and step % eval_every == 0):  # these wait for the step anyway
            write_log(*pending)
            pending = None
        if (eval_every and step % eval_every == 0) or final:
          results = runner.evaluate(state, max_batches=config.train.eval_batches)
          if evaluator is not None:
            results.update(evaluator(state, jax.random.fold_in(runner.sample_key, step)))
          eval_at = (step, results.get(family.main_metric))
          scalars = {f"eval/{k}": v for k, v in results.items()}
          writer.write(step, scalars)
          last.update(scalars)
          progress.message(f"step {step} eval " + " ".join(f"{k}={v:.4f}" for k, v in results.items()))
          write_samples(runner, state, workdir, step, is_main)
        if saving:
          scanned = checksum.scan(state)  # the checksums to save, and whether every float is finite
          check_finite(step, first_bad, scanned.finite)  # a non-finite state is never written
          elapsed = train_seconds + time.perf_counter() - t0
          main = eval_at[1] if eval_at[0] == step and family.best_mode else None
          main = main if main is not None and math.isfinite(main) else None
          checkpoint.save(mngr, step, state, {"iterator": iterator_state, "train_seconds": elapsed, **data_facts},
                          config, main_metric=main, checksums=scanned.sums)
      mngr.wait_until_finished()  # a failed background save raises here, inside the disk-error check
    except Exception as e:
      workdir_lib.raise_if_disk_error(e, workdir, mngr)
      raise
    finally:
      try:
        mngr.wait_until_finished()
      except Exception:  # already raised above (the save's error); a second report adds nothing
        pass
      progress.close()
      writer.close()
    if not last:  # nothing left to train: report how the run ended
      last = workdir_lib.final_metrics(workdir)
    train_seconds += time.perf_counter() - t0
    if is_main:
      write_run_summary(workdir, runner, state, train_seconds)
  return last


def write_atomically(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file, so a reader never sees half of it."""
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_samples(runner: Runner, state, workdir: str, step: int, is_main: bool = True) -> str | None:
  """A grid (images) or scatter (points) of the family's samples under its default conditions.

  Every process draws (the sampler spans all devices); only the main process writes the file.
  """
  from jgen.eval import plots

  if runner.sampler is None or runner.spec.kind not in ("image", "points") or runner.config.train.sample_num == 0:
    return None
  n = runner.config.train.sample_num
  x = runner.sampler.to_host(runner.sampler.default(state, jax.random.fold_in(runner.sample_key, step), n))
  if not is_main:
    return None
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
  if runner.spec.is_image:
    plots.save_image_grid(np.clip(x, 0.0, 1.0), path, title=f"{runner.config.model.name} step {step}")
  else:
    plots.save_points(x, path)
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
