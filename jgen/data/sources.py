"""Dataset names -> random-access sources: the one data entry point of jgen.

Local datasets ("fashion_mnist", "digits", "toy2d_<kind>") are prepared once by
jgen's offline TFDS builders into `data_dir` (default $JGEN_DATA_DIR or
~/.cache/jgen/tfds) and read back as array_record data sources. "tfds:NAME"
reads any TFDS catalogue dataset with `tfds.data_source` (needs the network the
first time). Every source has len() and returns {"x": ndarray, "label": int}.
"""

import contextlib
import difflib
import fcntl
import os
from typing import Any

import numpy as np

from jgen.data import toy2d
from jgen.errors import UserError

TFDS_PREFIX = "tfds:"
TOY2D_PREFIX = "toy2d_"

DATASETS = {
    "fashion_mnist": "Fashion-MNIST, 28x28 grey clothing images, 10 classes, 60000/10000 (local IDX files)",
    "digits": "scikit-learn's 8x8 handwritten digits, 10 classes, 1497/300 (bundled with scikit-learn)",
    **{TOY2D_PREFIX + kind: f"2-D toy: {toy2d.DESCRIPTIONS[kind]}, 100000/10000 (generated)"
       for kind in toy2d.TOY2D_KINDS},
}

# Static facts of the local datasets, known without preparing them.
_IMAGE_INFO = {
    "fashion_mnist": dict(kind="image", shape=(28, 28, 1), dtype="uint8", num_classes=10,
                          splits={"train": 60_000, "test": 10_000}),
    "digits": dict(kind="image", shape=(8, 8, 1), dtype="uint8", num_classes=10,
                   splits={"train": 1497, "test": 300}),
}

_LOCK_NAME = ".jgen_prepare.lock"


def default_data_dir() -> str:
  return os.environ.get("JGEN_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "jgen", "tfds")


def _check_name(name: str) -> None:
  if name in DATASETS or (name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX)):
    return
  near = difflib.get_close_matches(name, list(DATASETS), n=3, cutoff=0.5)
  hint = f"did you mean {', '.join(near)}?" if near else f"known: {', '.join(DATASETS)}"
  raise UserError(f"unknown dataset {name!r}; {hint} (or tfds:NAME for a TFDS catalogue dataset)")


def _local_builder(name: str, data_dir: str, source_dir: str | None):
  from jgen.data import builders

  kwargs = dict(data_dir=data_dir, file_format=builders.FILE_FORMAT)
  if name == "fashion_mnist":
    return builders.JgenFashionMnist(source_dir=source_dir, **kwargs)
  if name == "digits":
    return builders.JgenDigits(**kwargs)
  return builders.JgenToy2d(config=name[len(TOY2D_PREFIX):], **kwargs)


def _tfds_builder(name: str, data_dir: str | None):
  import tensorflow_datasets as tfds

  try:
    return tfds.builder(name[len(TFDS_PREFIX):], data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f"TFDS has no dataset {name[len(TFDS_PREFIX):]!r}; "
                    "see https://www.tensorflow.org/datasets/catalog") from None


@contextlib.contextmanager
def _prepare_lock(data_dir: str):
  """Serialises preparation across processes sharing a data_dir (parallel test workers, hosts)."""
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, _LOCK_NAME), "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_tfds():
  """Silences TFDS's progress bars and its warnings about not-yet-built folders."""
  from absl import logging
  from tensorflow_datasets.core.utils import tqdm_utils

  was_enabled, verbosity = tqdm_utils._active, logging.get_verbosity()  # restored afterwards
  tqdm_utils.disable_progress_bar()
  logging.set_verbosity(logging.ERROR)
  try:
    yield
  finally:
    tqdm_utils.display_progress_bar(was_enabled)
    logging.set_verbosity(verbosity)


def prepare(name: str, source_dir: str | None = None, data_dir: str | None = None) -> str:
  """Builds the array_record files of `name` unless already built; returns their directory."""
  _check_name(name)
  if name.startswith(TFDS_PREFIX):
    builder = _tfds_builder(name, data_dir)
    builder.download_and_prepare(file_format="array_record")
    return os.fspath(builder.data_dir)
  data_dir = data_dir or default_data_dir()
  with _quiet_tfds():
    builder = _local_builder(name, data_dir, source_dir)
    if builder.is_prepared():
      return os.fspath(builder.data_dir)
    if name == "fashion_mnist":
      from jgen.data.builders import fashion_mnist_files

      fashion_mnist_files(source_dir)  # a clear error before TFDS starts writing
    with _prepare_lock(data_dir):
      # Another process may have built it while this one waited for the lock.
      builder = _local_builder(name, data_dir, source_dir)
      if not builder.is_prepared():
        builder.download_and_prepare()
  return os.fspath(builder.data_dir)


class _Source:
  """A TFDS data source seen through jgen's keys: {"x": ndarray, "label": ndarray}."""

  def __init__(self, source, image_key: str = "x", label_key: str | None = "label"):
    self._source = source
    self._image_key = image_key
    self._label_key = label_key

  def __len__(self) -> int:
    return len(self._source)

  def _rename(self, example) -> dict[str, Any]:
    label = example[self._label_key] if self._label_key else 0
    return {"x": np.asarray(example[self._image_key]), "label": np.asarray(label)}

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self._rename(self._source[index])

  def __getitems__(self, indices):
    """A batched read (one call into array_record) where the wrapped source has one."""
    if hasattr(self._source, "__getitems__"):
      return [self._rename(example) for example in self._source.__getitems__(list(indices))]
    return [self[i] for i in indices]

  def __repr__(self) -> str:
    return f"_Source({self._source!r})"


def _tfds_keys(name: str, features) -> tuple[str, str | None]:
  keys = list(features.keys())
  image_key = "image" if "image" in keys else None
  if image_key is None:
    raise UserError(f"{name} has no 'image' feature (it has {', '.join(keys)}); jgen reads image datasets only")
  return image_key, "label" if "label" in keys else None


def _check_split(name: str, split: str, splits) -> None:
  base = split.split("[")[0].split("+")[0].strip()
  if splits and base not in splits:
    raise UserError(f"dataset {name} has no split {base!r}; it has {', '.join(splits)}")


def load(name: str, split: str, data_dir: str | None = None, source_dir: str | None = None):
  """A random-access source over one split (TFDS split syntax such as "train[:90%]" works)."""
  _check_name(name)
  if name.startswith(TFDS_PREFIX):
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name, data_dir)
    _check_split(name, split, list(builder.info.splits))
    source = tfds.data_source(name[len(TFDS_PREFIX):], split=split, data_dir=data_dir)
    return _Source(source, *_tfds_keys(name, builder.info.features))
  data_dir = data_dir or default_data_dir()
  prepare(name, source_dir=source_dir, data_dir=data_dir)
  _check_split(name, split, info(name)["splits"])
  with _quiet_tfds():
    return _Source(_local_builder(name, data_dir, source_dir).as_data_source(split))


def info(name: str, data_dir: str | None = None) -> dict[str, Any]:
  """What a dataset holds: kind ("image" | "points"), shape, dtype, num_classes, splits {name: size}."""
  _check_name(name)
  if name in _IMAGE_INFO:
    out = dict(_IMAGE_INFO[name], splits=dict(_IMAGE_INFO[name]["splits"]))
    if name == "fashion_mnist":
      from jgen.data.builders import FASHION_MNIST_CLASSES

      out["class_names"] = FASHION_MNIST_CLASSES
    return {"name": name, "description": DATASETS[name], **out}
  if name.startswith(TOY2D_PREFIX):
    from jgen.data.builders import TOY2D_SPLIT_SIZES

    kind = name[len(TOY2D_PREFIX):]
    return {"name": name, "description": DATASETS[name], "kind": "points", "shape": (2,),
            "dtype": "float32", "num_classes": toy2d.NUM_CLASSES[kind], "splits": dict(TOY2D_SPLIT_SIZES)}
  builder = _tfds_builder(name, data_dir)
  features = builder.info.features
  image_key, label_key = _tfds_keys(name, features)
  num_classes = getattr(features[label_key], "num_classes", None) if label_key else None
  return {"name": name, "description": f"TFDS catalogue dataset {builder.name}", "kind": "image",
          "shape": tuple(features[image_key].shape), "dtype": np.dtype(features[image_key].np_dtype).name,
          "num_classes": num_classes or 1,
          "splits": {s: split.num_examples for s, split in builder.info.splits.items()}}
