"""`jgen score`: per-example scores of inputs under a trained family, and the AUROC of inliers against outliers.

The score is jgen.eval.ood's: the family's log-likelihood (exact, a bound, or with K importance samples the
IWAE estimate) or its declared unnormalised score (an EBM's -E(x)); higher = more typical. Inputs are named:
- a dataset (`jgen data list`), read with the given split, whose examples must have the run's shape;
- an outlier set of the run's own dataset: "noise" (uniform), "inverted" (1 - x of the split), "digits28"
  (scikit-learn's digits resized to the run's image shape);
- a .npy file [N, ...] of the run's data shape: images as floats in [0, 1] or uint8 0..255, points as floats.
Images are put on the 8-bit grid the loader's images lie on, so every family sees valid pixel values; a
binary-likelihood family scores their fixed binarization (`suite.test_set_protocol`).
"""

import json
import os

import numpy as np

from jgen.errors import UserError, first_line
from jgen.eval import ood

OUTLIER_NAMES = {"noise": "noise", "inverted": "inverted", "digits28": "digits"}  # CLI name -> ood's set
IWAE_BATCH_SIZE = 100  # K weights per example are held at once in chunks: smaller batches than plain scoring


def _name(family) -> str:
  return family.config.model.name


def check_scorable(family, iwae_samples: int | None) -> str:
  """The kind of score the family gives, or one line saying why it gives none."""
  if family.spec.kind not in ("image", "points"):
    raise UserError(f"`jgen score` scores images or points; {_name(family)} models {family.spec.kind}")
  if iwae_samples:
    if not getattr(family, "importance_weights", False):
      raise UserError(f"--iwae: {_name(family)} declares no importance weights (only latent-variable families "
                      f"such as the VAE do); drop --iwae to score its "
                      f"{ood.score_kind(family) if family.likelihood else 'score'}")
    return ood.score_kind(family, iwae_samples)
  try:
    ood.score_fn(family)
  except ValueError:
    raise UserError(f"{_name(family)} declares neither a likelihood nor a score (an implicit model): it cannot "
                    f"score inputs") from None
  return ood.score_kind(family)


def _shape_text(shape) -> str:
  return "x".join(str(s) for s in shape)


def load_npy(path: str, spec, limit: int | None) -> np.ndarray:
  """A .npy file of examples of the run's data shape -> float32 as the loader gives data (images in [0, 1])."""
  if not os.path.isfile(path):
    what = "is a directory" if os.path.isdir(path) else "does not exist"
    raise UserError(f"{path!r} {what}: give a .npy file of inputs [N, {_shape_text(spec.shape)}]")
  try:
    x = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise UserError(f"{path!r} is not a readable .npy array ({type(e).__name__}: "
                    f"{first_line(e)}): save one with numpy.save") from None
  want = tuple(spec.shape)
  if spec.is_image and want[-1] == 1 and x.shape[1:] == want[:-1]:
    x = x[..., None]  # [N, H, W] for one-channel images
  if x.ndim == 0 or x.shape[1:] != want or len(x) == 0:
    raise UserError(f"{path!r} holds an array of shape {list(x.shape)}; the run models examples of shape "
                    f"{list(want)}: give [N, {', '.join(map(str, want))}] with N >= 1")
  if x.dtype == np.uint8 and spec.is_image:
    x = x.astype(np.float32) / 255.0
  elif x.dtype.kind == "f":
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
      raise UserError(f"{path!r} holds NaN or infinite values: give finite inputs")
    if spec.is_image and (x.min() < 0.0 or x.max() > 1.0):
      raise UserError(f"{path!r}: float images must lie in [0, 1], these span [{x.min():.4g}, {x.max():.4g}]; "
                      f"divide 8-bit pixels by 255 or save them as uint8")
  else:
    allowed = "floats in [0, 1] or uint8 0..255" if spec.is_image else "floats"
    raise UserError(f"{path!r} holds {x.dtype} values; give {allowed}")
  x = x[:limit]
  return ood.to_8bit_grid(x) if spec.is_image else x


def resolve(text: str, split: str, config, family, limit: int | None, seed: int) -> tuple[np.ndarray, dict]:
  """The inputs named by `text` (a dataset, an outlier set or a .npy file) and a record of what they are."""
  from jgen.data import sources
  from jgen.eval.suite import load_split

  spec = family.spec
  own = dict(source_dir=config.data.source_dir or None, validation_size=config.data.validation_size)
  if text.lower().endswith(".npy"):
    x = load_npy(text, spec, limit)
    return x, {"file": os.path.abspath(text), "n": len(x)}
  if text in OUTLIER_NAMES:
    if not spec.is_image and text != "noise":
      raise UserError(f"outlier set {text!r} is made of images; {_name(family)} models points (use noise)")
    base, _ = load_split(config.data.name, split, limit, **own)
    n = len(base) if limit is None else limit
    x = ood.outlier_set(OUTLIER_NAMES[text], base, n, seed)
    return x, {"outlier_set": text, "of": f"{config.data.name}/{split}", "n": len(x), "seed": seed}
  if text in sources.DATASETS or text.startswith(sources.TFDS_PREFIX):
    if sources.is_text(text):
      raise UserError(f"{text} holds text; `jgen score` scores images or points")
    kwargs = own if text == config.data.name else {}
    found = sources.info(text, source_dir=kwargs.get("source_dir"))
    if tuple(found["shape"]) != tuple(spec.shape) or found["kind"] != spec.kind:
      hint = "; digits28 is the digits resized to the run's shape" if text == "digits" and spec.is_image else ""
      raise UserError(f"{text} holds {found['kind']} of shape {_shape_text(found['shape'])}; the run models "
                      f"{spec.kind} of shape {_shape_text(spec.shape)}{hint}")
    x, _ = load_split(text, split, limit, **kwargs)
    return np.asarray(x, np.float32), {"dataset": text, "split": split, "n": len(x)}
  raise UserError(f"--data/--against {text!r}: give a dataset name (`jgen data list`), an outlier set "
                  f"({', '.join(OUTLIER_NAMES)}) or a .npy file")


def _describe(record: dict) -> str:
  if "file" in record:
    return os.path.basename(record["file"])
  if "outlier_set" in record:
    return f"{record['outlier_set']} ({record['of']})"
  return f"{record['dataset']}/{record['split']}"


def score(family, state, x, seed: int, iwae_samples: int | None) -> np.ndarray:
  """Scores [N] float64 of inputs `x`, batch i with key fold_in(seed, i)."""
  batch_size = IWAE_BATCH_SIZE if iwae_samples else int(family.config.data.eval_batch_size or 500)
  return ood.scores(family, state, x, batch_size=batch_size, seed=seed,
                    iwae_samples=iwae_samples).astype(np.float64)


def json_path(out: str) -> str:
  """The JSON record next to an output file: the same stem, .json."""
  return os.path.splitext(out)[0] + ".json"


def write(out: str, scores: np.ndarray, record: dict) -> None:
  """scores.npy and, next to it, its JSON record."""
  np.save(out, scores)
  with open(json_path(out), "w") as f:
    json.dump(record, f, indent=2)


def run(workdir: str, data: str, out: str, split: str = "test", against: str | None = None,
        iwae_samples: int | None = None, num_examples: int | None = None, seed: int = 0,
        checkpoint: str = "latest") -> tuple[dict, str]:
  """Restores the run, scores `data` (and `against`), writes `out` and its JSON; returns the record and a
  one-line summary."""
  from jgen.train.checkpoint import restore_for_inference

  config, family, state = restore_for_inference(workdir, checkpoint)
  kind = check_scorable(family, iwae_samples)
  x, data_record = resolve(data, split, config, family, num_examples, seed)
  other = resolve(against, split, config, family, num_examples, seed + 1) if against else None
  s = score(family, state, x, seed, iwae_samples)
  unit = "nats per example" if kind.startswith("log p") else "unnormalised (log p + log Z)"
  record = {"workdir": os.path.abspath(workdir), "model": _name(family), "checkpoint": checkpoint,
            "step": int(np.asarray(state.step)), "score": kind, "unit": unit, "seed": seed,
            "higher": "more typical of the training data", "data": data_record, "n": len(s), "mean": float(s.mean()),
            "std": float(s.std()), "scores_file": os.path.abspath(out)}
  if family.space == "binary":
    record["convention"] = "binary likelihood: the inputs' fixed binarization (as jgen evaluate scores test sets)"
  if other is not None:
    y, other_record = other
    t = score(family, state, y, seed + 1, iwae_samples)
    record["against"] = {**other_record, "mean": float(t.mean()), "std": float(t.std()),
                         "auroc": ood.auroc(s, t),
                         "auroc_meaning": "P(score of a --data input > score of an --against input); 1 separates them"}
  record["json_file"] = os.path.abspath(json_path(out))
  write(out, s, record)
  line = f"scored {len(s)} inputs of {_describe(data_record)} with {_name(family)}: {kind} mean {s.mean():.4g}"
  if other is not None:
    a = record["against"]
    line += f"; against {_describe(other_record)} ({a['n']}): mean {a['mean']:.4g}, AUROC {a['auroc']:.4f}"
  return record, f"{line}; wrote {out} and {json_path(out)}"
