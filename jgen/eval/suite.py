"""`evaluate`: the metrics that apply to a trained family, on a data split, with their conventions.

- "nll": the family's `log_prob` on the split, in nats per example and bits/dim
  following jgen.eval.likelihood (the family applies its likelihood space's
  convention itself), marked exact or a bound by the family's declared `likelihood`.
- "iwae": the importance-weighted estimate with K samples, for families that
  declare `importance_weights`.
- "fid" / "pr": FID-FMNIST, KID-FMNIST, precision and recall of `family.sample`
  against the split, in the shipped classifier's feature space; only for
  families whose samples are 28x28x1 images. FID-FMNIST is not Inception FID.
- "classes": the shipped classifier's view of the same samples (jgen.eval.class_coverage):
  classes covered, KL of the class histogram to uniform, and for a label-conditional
  family the share of samples classified as the label they were drawn under.

The result is the JSON-able dict `jgen evaluate` writes to eval.json.
"""

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jgen.errors import UserError
from jgen.eval import frechet, iwae, likelihood, precision_recall
from jgen.train.compile_options import step_jit

FID_CONVENTION = ("FID-FMNIST: Frechet distance between Gaussians fitted to the penultimate features of jgen's "
                  "shipped Fashion-MNIST classifier (float64); not Inception FID, not comparable with papers' FID")
KID_CONVENTION = "KID-FMNIST: unbiased MMD^2, cubic polynomial kernel on the same features, mean over 1000-sample subsets"
PR_CONVENTION = "k-NN (k=3) manifold precision/recall (Kynkaanniemi et al., 2019) on the same features"
SAMPLE_SEED = 1234


def load_split(name: str, split: str, limit: int | None = None, source_dir: str | None = None,
               validation_size: int = -1):
  """Images float32 in [0, 1] (or points) and int32 labels of a split, at most `limit` examples."""
  from jgen.data import pipeline, sources

  source = sources.load(name, split, source_dir=source_dir, validation_size=validation_size)
  n = len(source) if limit is None else min(limit, len(source))
  xs, labels = [], []
  for batch, mask in pipeline.eval_batches(source, batch_size=1000):
    xs.append(pipeline.images_to_float(batch["x"][mask]))
    labels.append(batch["label"][mask])
    if sum(len(x) for x in xs) >= n:
      break
  return np.concatenate(xs)[:n], np.concatenate(labels)[:n]


def test_set_protocol(family, x):
  """The test set a likelihood is scored on: binary-space families see one fixed binarization of it
  (the published protocol; their `log_prob` leaves binary data unchanged), the others the data as loaded."""
  return np.asarray(likelihood.binarize(x)) if family.space == "binary" else x


def _batches(x, batch_size):
  for start in range(0, len(x), batch_size):
    yield x[start:start + batch_size]


def _padded_call(fn, x, batch_size, rng=None):
  """fn over fixed-size batches (the last one padded), so one compilation serves the whole split.

  With `rng`, batch i is called as fn(batch, fold_in(rng, i)): each batch gets its own noise.
  """
  out = []
  for i, chunk in enumerate(_batches(x, batch_size)):
    n = len(chunk)
    if n < batch_size:
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, axis=0)])
    args = (jnp.asarray(chunk),) if rng is None else (jnp.asarray(chunk), jax.random.fold_in(rng, i))
    out.append(np.asarray(fn(*args))[:n])
  return np.concatenate(out)


def nll_metrics(family, state, x, batch_size: int = 500, seed: int = 0) -> dict:
  """Likelihood records (nats, bits/dim) of `family.log_prob` on data `x` as loaded, with conventions."""
  x = test_set_protocol(family, x)
  log_prob = step_jit(family.log_prob)
  nll = -_padded_call(functools.partial(log_prob, state), x, batch_size, rng=jax.random.key(seed))
  return likelihood.report(nll, x.shape, family.space, family.likelihood, family.likelihood_samples)


def iwae_batch_size() -> int:
  """Test examples per IWAE call: each call decodes batch x chunk (100) latents, ~1e4 on a CPU, ~1e5 on an
  accelerator, where small calls would leave it idle."""
  return 100 if jax.default_backend() == "cpu" else 1000


def iwae_metrics(family, state, x, num_samples: int = 5000, chunk_size: int = 100,
                 batch_size: int | None = None, seed: int = 0) -> dict:
  """IWAE records with K = `num_samples` (keys "nll_iwae", "bits_per_dim_iwae")."""
  x = test_set_protocol(family, x)
  batch_size = batch_size or iwae_batch_size()
  log_p = iwae.iwae_log_likelihood(family, state, _batches(x, batch_size), jax.random.key(seed), num_samples,
                                   chunk_size)
  rep = likelihood.report(-np.asarray(log_p), x.shape, family.space, "importance_weighted", num_samples)
  return {f"{k}_iwae": v for k, v in rep.items()}


def draw_samples(family, state, n: int, batch_size: int = 500, seed: int = SAMPLE_SEED, with_labels: bool = False):
  """`n` samples under the family's default conditions, in jitted batches of `batch_size`; with `with_labels`,
  (samples, the labels they were drawn under or None)."""
  from jgen.train.sampling import Sampler, draw_with_labels

  x, labels = draw_with_labels(Sampler(family), state, n, jax.random.key(seed), batch_size)
  return (x, labels) if with_labels else x


def sample_quality(real_images, fake_images, which=("fid", "pr"), feature_network=None, fake_labels=None,
                   real_labels=None) -> tuple[dict, dict]:
  """FID/KID-FMNIST, precision/recall and the class diagnostics ("classes": `class_metrics`, given the labels
  the samples were drawn under and the real images' labels where known) of fake vs real images
  [N,28,28,1], all from one pass of the feature network; returns (metrics, seconds)."""
  from jgen.eval.features import load_feature_network

  net = feature_network or load_feature_network()
  seconds = {}
  t0 = time.perf_counter()
  fake_images = np.clip(np.nan_to_num(fake_images), 0.0, 1.0)
  real, fake = net(real_images), net(fake_images)
  seconds["features"] = time.perf_counter() - t0
  out = {}
  n = min(len(real), len(fake))
  if "fid" in which:
    t0 = time.perf_counter()
    out["fid_fmnist"] = {"value": frechet.frechet_distance_of_features(real, fake), "num_samples": n,
                         "convention": FID_CONVENTION}
    seconds["fid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    kid, kid_std = frechet.kernel_distance(real, fake)
    out["kid_fmnist"] = {"value": kid, "std": kid_std, "num_samples": n, "convention": KID_CONVENTION}
    seconds["kid"] = time.perf_counter() - t0
  if "pr" in which:
    t0 = time.perf_counter()
    p, r = precision_recall.precision_recall(real[:n], fake[:n])
    out["precision"] = {"value": p, "num_samples": n, "convention": PR_CONVENTION}
    out["recall"] = {"value": r, "num_samples": n, "convention": PR_CONVENTION}
    seconds["precision_recall"] = time.perf_counter() - t0
  if "classes" in which:
    t0 = time.perf_counter()
    out.update(class_metrics(net.logits(fake_images), fake_labels, real, fake, real_labels))
    seconds["classes"] = time.perf_counter() - t0
  return out, seconds


def class_metrics(logits, labels=None, real_features=None, fake_features=None, real_labels=None) -> dict:
  """Records of jgen.eval.class_coverage from the classifier's logits [N, C] on samples (drawn under `labels`
  [N] where conditional); with the features of labelled real images too, a conditional model's intra-class
  FID (Miyato & Koyama 2018): FID-FMNIST of each class's samples against that class's real images, averaged
  over the classes."""
  from jgen.eval.class_coverage import CLASSES_CONVENTION, coverage

  out = {k: {"value": v, "num_samples": len(logits), "convention": CLASSES_CONVENTION}
         for k, v in coverage(logits, labels).items()}
  if labels is not None and real_labels is not None:
    labels, real_labels = np.asarray(labels), np.asarray(real_labels)
    per_class = [frechet.frechet_distance_of_features(real_features[real_labels == c], fake_features[labels == c])
                 for c in range(logits.shape[1]) if (labels == c).sum() > 1 and (real_labels == c).sum() > 1]
    out["intra_fid_fmnist"] = {"value": float(np.mean(per_class)), "per_class": [float(v) for v in per_class],
                               "num_samples": len(logits), "convention": "FID-FMNIST of each class's samples "
                               "against the split's images of that class, averaged over the classes"}
  return out


def _samples_images(family) -> bool:
  return family.generative and family.spec.shape == (28, 28, 1)


def evaluate(config, family, state, metrics=("nll", "fid", "pr"), num_samples: int = 10000, split: str = "test",
             *, data=None, iwae_samples: int = 5000, feature_network=None, num_examples: int | None = None) -> dict:
  """The metrics of `metrics` that apply to this family, on `split` of `config.data.name`.

  `data` (x, labels) replaces reading the split (tests, benchmarks). Likelihoods
  use the whole split, or its first `num_examples` (for models whose bound is costly);
  sample metrics compare `num_samples` samples with the
  first `num_samples` examples of the split. Metrics that do not apply are
  listed under "skipped" with the reason.
  """
  metrics = tuple(metrics)
  x, y = data if data is not None else load_split(config.data.name, split, source_dir=config.data.source_dir or None,
                                                    validation_size=config.data.validation_size)
  x = np.asarray(x, np.float32)
  device = jax.devices()[0]
  result = {"model": config.model.name, "family": family.family, "branch": family.branch,
            "dataset": config.data.name, "split": split, "step": int(jax.device_get(state.step)),
            "parameters": int(family.num_params(state)), "device": f"{jax.device_count()}x {device.device_kind}",
            "metrics": {}, "seconds": {}, "skipped": {}}
  batch_size = int(config.data.eval_batch_size or 500)
  x_lik = x if num_examples is None else x[:num_examples]
  if len(x_lik) < len(x) and ("nll" in metrics or "iwae" in metrics):
    result["likelihood_examples"] = len(x_lik)  # only a subset of the split

  # metric -> (the capability it needs, how to compute it)
  likelihoods = {"nll": ("likelihood", lambda: nll_metrics(family, state, x_lik, batch_size)),
                 "iwae": ("importance_weights", lambda: iwae_metrics(family, state, x_lik, iwae_samples))}
  for name, (capability, compute) in likelihoods.items():
    if name not in metrics:
      continue
    if not getattr(family, capability, None):
      result["skipped"][name] = f"{config.model.name} declares no {capability.replace('_', ' ')}"
      continue
    t0 = time.perf_counter()
    records = compute()
    for record in records.values():  # each record says how many test examples it averages (evaluations merge)
      record.update(examples=len(x_lik), split_examples=len(x))
    result["metrics"].update(records)
    result["seconds"][name] = time.perf_counter() - t0

  wanted = tuple(m for m in ("fid", "pr", "classes") if m in metrics)
  if wanted:
    if not _samples_images(family):
      for m in wanted:
        result["skipped"][m] = "sample metrics need a generative model of 28x28x1 images (FID-FMNIST features)"
    else:
      n = min(num_samples, len(x))
      t0 = time.perf_counter()
      fake, labels = draw_samples(family, state, n, batch_size, with_labels=True)
      result["seconds"]["sampling"] = time.perf_counter() - t0
      out, seconds = sample_quality(x[:n], fake, wanted, feature_network, labels, None if y is None else y[:n])
      result["metrics"].update(out)
      result["seconds"].update(seconds)
  return result


def eval_json_name(weights: str = "inference") -> str:
  """eval.json for the weights sampling uses (the EMA where kept); eval_trained_weights.json for the raw ones."""
  return "eval.json" if weights == "inference" else "eval_trained_weights.json"


def _earlier_eval(workdir: str, name: str = "eval.json") -> dict | None:
  """The workdir's eval.json, None if there is none; a file that is not one of ours is refused, not replaced."""
  path = os.path.join(workdir, name)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      earlier = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"{path} is unreadable ({type(e).__name__}); nothing evaluated: move it aside and "
                    f"run again") from None
  if not isinstance(earlier, dict) or not all(isinstance(earlier.get(k, {}), dict)
                                             for k in ("metrics", "seconds", "skipped")):
    raise UserError(f"{path} is not an eval.json of `jgen evaluate` (not a JSON object with metrics); nothing "
                    f"evaluated: move it aside and run again")
  return earlier


def write_eval_json(result: dict, workdir: str, earlier: dict | None = None, name: str = "eval.json") -> str:
  """Writes eval.json into the run's workdir, with the run's run.json facts (train time, steps) merged in.

  Metrics of an `earlier` evaluation of the same checkpoint step and split that this one did not recompute
  are kept (evaluating fid after nll keeps nll); an evaluation of another step replaces it.
  """
  if earlier and earlier.get("step") == result.get("step") and earlier.get("split") == result.get("split"):
    for key in ("metrics", "seconds", "skipped"):
      result[key] = {**earlier.get(key, {}), **result.get(key, {})}
    for key in result["metrics"]:
      result["skipped"].pop(key, None)
  run_json = os.path.join(workdir, "run.json")
  if os.path.isfile(run_json):
    with open(run_json) as f:
      result = {"run": json.load(f), **result}
  path = os.path.join(workdir, name)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
  os.replace(tmp, path)
  return path


def _applicable(family, metrics) -> tuple[list[str], list[str]]:
  """The requested metrics this family can report, and why each other one cannot."""
  needs = {"nll": (lambda: family.likelihood, "declares no likelihood"),
           "iwae": (lambda: getattr(family, "importance_weights", False), "declares no importance weights"),
           "fid": (lambda: _samples_images(family), "is not a generative model of 28x28x1 images (FID-FMNIST)"),
           "pr": (lambda: _samples_images(family), "is not a generative model of 28x28x1 images (FID-FMNIST)"),
           "classes": (lambda: _samples_images(family), "is not a generative model of 28x28x1 images (FID-FMNIST)")}
  ok = [m for m in metrics if needs[m][0]()]
  return ok, [f"{m}: {family.config.model.name} on {family.config.data.name} {needs[m][1]}"
              for m in metrics if m not in ok]


def evaluate_workdir(workdir: str, metrics=("nll", "fid", "pr"), num_samples: int = 10000,
                     split: str = "test", num_examples: int | None = None, checkpoint: str = "latest",
                     iwae_samples: int = 5000, weights: str = "inference") -> dict:
  """Restores a run's newest (or best) checkpoint, evaluates it and writes `workdir`/eval.json.

  `weights="trained"` evaluates the trained weights where the run keeps an EMA (which sampling and evaluation
  otherwise use), into eval_trained_weights.json, so the two can be compared on one checkpoint."""
  from jgen.train.checkpoint import restore_for_inference

  if os.path.isdir(workdir) and not os.access(workdir, os.W_OK | os.X_OK):
    raise UserError(f"workdir {workdir!r} is not writable, so eval.json cannot be written: fix its permissions")
  name = eval_json_name(weights)
  earlier = _earlier_eval(workdir, name) if os.path.isdir(workdir) else None
  config, family, state = restore_for_inference(workdir, checkpoint)
  if weights == "trained":
    if not state.ema:
      raise UserError(f"--weights trained: {workdir} keeps no EMA (optim.ema_decay is 0), so its evaluation already "
                      f"uses the trained weights; leave out --weights")
    state = state.replace(ema={})
  ok, reasons = _applicable(family, metrics)
  if not ok:
    raise UserError(f"no requested metric applies ({'; '.join(reasons)}); nothing written")
  result = evaluate(config, family, state, metrics, num_samples, split, num_examples=num_examples,
                    iwae_samples=iwae_samples)
  result["checkpoint"] = checkpoint
  result["weights"] = "trained" if weights == "trained" else ("ema" if state.ema else "trained")
  write_eval_json(result, workdir, earlier, name)
  return result
