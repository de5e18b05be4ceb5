"""Dataset names -> random-access sources: the one data entry point of jgen.

Local datasets ("fashion_mnist", "digits", "toy2d_<kind>") are prepared once by
jgen's offline TFDS builders into `data_dir` (default $JGEN_DATA_DIR or
~/.cache/jgen/tfds) and read back as array_record data sources. "tfds:NAME"
reads any TFDS catalogue dataset with `tfds.data_source` (needs the network the
first time). Every source has len() and returns {"x": ndarray, "label": int}.

Text datasets ("fortunes", "text" with --source; "NAME@T" for windows of T
characters) are prepared as documents of character ids with their own
validation split of documents, and served as windows (jgen.data.text).

Every dataset has train / validation / test splits. Local datasets are prepared
with train and test only; their validation split is the last V examples of the
prepared train split and "train" the first N - V, sliced when read, so changing
V never rebuilds anything. A catalogue dataset uses its own validation split when
it has one and is carved the same way otherwise.
"""

import contextlib
import difflib
import fcntl
import operator
import os
from typing import Any

import numpy as np

from jgen import cache_paths
from jgen.data import record_parser, text, toy2d
from jgen.errors import UserError, first_line

TFDS_PREFIX = "tfds:"
TOY2D_PREFIX = "toy2d_"

DATASETS = {
    "fashion_mnist": "Fashion-MNIST, 28x28 grey clothing images, 10 classes, "
                     "50000/10000/10000 train/validation/test (local IDX files)",
    "digits": "scikit-learn's 8x8 handwritten digits, 10 classes, "
              "1197/300/300 train/validation/test (bundled with scikit-learn)",
    **{TOY2D_PREFIX + kind: f"2-D toy: {toy2d.DESCRIPTIONS[kind]}, 90000/10000/10000 train/validation/test (generated)"
       for kind in toy2d.TOY2D_KINDS},
    "fortunes": "Debian's fortunes (about 15,000 short English texts), characters, split by document 90/5/5 %; "
                f"NAME@T for windows of T characters (default {text.DEFAULT_CONTEXT})",
    "text": "any UTF-8 text file or directory given with --source (data.source_dir), characters, "
            "split by document (paragraph, or fortune-file entry) 90/5/5 %; text@T for windows of T",
}
# Corpora of characters: prepared as documents, served as windows of the length named after '@'.
TEXT_DATASETS = ("fortunes", "text")

SPLITS = ("train", "validation", "test")
# Examples at the end of the prepared train split that form the validation split by default.
DEFAULT_VALIDATION_SIZE = {
    "fashion_mnist": 10_000,
    "digits": 300,
    **{TOY2D_PREFIX + kind: 10_000 for kind in toy2d.TOY2D_KINDS},
}
# A catalogue dataset without a validation split gives this share of train to one.
TFDS_VALIDATION_FRACTION = 0.1

# Static facts of the local datasets (their prepared splits), known without preparing them.
_IMAGE_INFO = {
    "fashion_mnist": dict(kind="image", shape=(28, 28, 1), dtype="uint8", num_classes=10,
                          splits={"train": 60_000, "test": 10_000}),
    "digits": dict(kind="image", shape=(8, 8, 1), dtype="uint8", num_classes=10,
                   splits={"train": 1497, "test": 300}),
}

_LOCK_NAME = ".jgen_prepare.lock"


def default_data_dir() -> str:
  given = os.environ.get("JGEN_DATA_DIR")
  if given and not os.path.isdir(cache_paths.nearest_existing(given)):  # it, or a directory above it, is a file
    raise UserError(f"JGEN_DATA_DIR={given!r}: {cache_paths.nearest_existing(given)!r} is a file, not a directory: point it "
                    f"at a directory for prepared datasets (or unset it for ~/.cache/jgen/tfds)")
  return given or os.path.join(os.path.expanduser("~"), ".cache", "jgen", "tfds")


def _check_writable(data_dir: str) -> None:
  """Preparing writes under data_dir (created if missing): say so in one line when it cannot."""
  if not cache_paths.can_make_directory(data_dir):
    existing = cache_paths.nearest_existing(data_dir)
    raise UserError(f"cannot prepare datasets in {data_dir!r}: {existing!r} is not a writable directory; set "
                    f"JGEN_DATA_DIR to a writable directory")


def _check_name(name: str) -> None:
  if is_text(name):
    text.parse_name(name)  # a bad window length is its own one-line error
    return
  if name in DATASETS or (name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX)):
    return
  near = difflib.get_close_matches(name, list(DATASETS), n=3, cutoff=0.5)
  hint = f"did you mean {', '.join(near)}?" if near else f"known: {', '.join(DATASETS)}"
  raise UserError(f"unknown dataset {name!r}; {hint} (or tfds:NAME for a TFDS catalogue dataset)")


def is_text(name: str) -> bool:
  return name.partition("@")[0] in TEXT_DATASETS


def _local_builder(name: str, data_dir: str, source_dir: str | None):
  from jgen.data import builders

  kwargs = dict(data_dir=data_dir, file_format=builders.FILE_FORMAT)
  if is_text(name):
    import tensorflow_datasets as tfds

    base = text.parse_name(name)[0]
    files = text.corpus_files(base, source_dir)
    config = tfds.core.BuilderConfig(name=builders.text_config_name(base, files))
    return builders.JgenText(files=files, config=config, **kwargs)
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
    if is_text(name):
      _check_text_splits(builder.files)
    _check_writable(data_dir)
    with _prepare_lock(data_dir):
      # Another process may have built it while this one waited for the lock.
      builder = _local_builder(name, data_dir, source_dir)
      if not builder.is_prepared():
        builder.download_and_prepare()
  return os.fspath(builder.data_dir)


def _check_text_splits(files: list[str]) -> None:
  """Every split needs documents; say so in one line before TFDS writes anything."""
  splits = text.split_documents_by_hash(text.read_documents(files))
  empty = [split for split, docs in splits.items() if not docs]
  if empty:
    raise UserError(f"{', '.join(files[:2])}: too few documents for a {' and '.join(empty)} split (about 5 % of "
                    f"the documents go to each; {sum(map(len, splits.values()))} found): give more text")


def text_vocab(name: str, data_dir: str | None = None, source_dir: str | None = None) -> "text.Vocab":
  """The vocabulary a text dataset was prepared with (preparing it first if needed)."""
  data_dir = data_dir or default_data_dir()
  prepare(name, source_dir=source_dir, data_dir=data_dir)
  with _quiet_tfds():
    return text.Vocab(_local_builder(name, data_dir, source_dir).info.metadata["vocab"])


def _load_text(name: str, split: str, data_dir: str, source_dir: str | None):
  """Windows over one split's documents, joined into one stream (read once per process)."""
  from jgen.data import pipeline

  prepare(name, source_dir=source_dir, data_dir=data_dir)
  with _quiet_tfds():
    builder = _local_builder(name, data_dir, source_dir)

  def read():
    with _quiet_tfds():
      source = builder.as_data_source(split)
      return text.stream(e["x"] for e in pipeline._read(source, range(len(source))))

  context = text.parse_name(name)[1]
  return text.windows_for(split, context, read, (os.fspath(builder.data_dir), split))


class _Source:
  """A TFDS data source seen through jgen's keys: {"x": ndarray, "label": ndarray}.

  `start`/`stop` restrict it to the records [start, stop) of the wrapped source, renumbered
  from 0: that is how train and validation share one prepared train split.
  """

  def __init__(self, source, image_key: str = "x", label_key: str | None = "label",
               start: int = 0, stop: int | None = None):
    total = len(source)
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
      raise ValueError(f"slice [{start}, {stop}) is not within a source of {total} examples")
    self._source = source
    self._image_key = image_key
    self._label_key = label_key
    self._start, self._len = start, stop - start
    keys = [image_key] + ([label_key] if label_key else [])
    self._parse = record_parser.for_source(source, keys)  # None: TFDS decodes each record

  def __len__(self) -> int:
    return self._len

  def _index(self, index) -> int:
    """The wrapped source's index of example `index` (negative counts from the end, as for lists)."""
    index = operator.index(index)
    position = index + self._len if index < 0 else index
    # The wrapped source holds records past the slice, so it would not raise for them itself.
    if not 0 <= position < self._len:
      raise IndexError(f"index {index} is out of range for a source of {self._len} examples")
    return self._start + position

  def _rename(self, example) -> dict[str, Any]:
    label = example[self._label_key] if self._label_key else 0
    return {"x": np.asarray(example[self._image_key]), "label": np.asarray(label)}

  def __getitem__(self, index: int) -> dict[str, Any]:
    with self._damage_is_a_user_error():
      return self._rename(self._source[self._index(index)])

  def __getitems__(self, indices):
    """A batched read (one call into array_record) where the wrapped source has one."""
    indices = [self._index(i) for i in indices]
    with self._damage_is_a_user_error():
      if self._parse is not None:
        return [self._rename(example) for example in self._parse(self._source.data_source.__getitems__(indices))]
      if hasattr(self._source, "__getitems__"):
        return [self._rename(example) for example in self._source.__getitems__(indices)]
      return [self._rename(self._source[i]) for i in indices]

  @contextlib.contextmanager
  def _damage_is_a_user_error(self):
    """array_record checks every chunk's hash: a damaged prepared file is one line naming what to delete."""
    try:
      yield
    except RuntimeError as e:
      if "Corrupted" not in str(e):
        raise
      where = getattr(getattr(self._source, "dataset_info", None), "data_dir", None) or "its data directory"
      raise UserError(f"the prepared dataset in {where} is damaged ({first_line(e)}): "
                      f"delete that directory and the next run prepares it again") from None

  def __repr__(self) -> str:
    return f"_Source({self._source!r}, start={self._start}, stop={self._start + self._len})"


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


def _prepared_splits(name: str) -> dict[str, int]:
  """The split sizes a local dataset is prepared with (train still holds validation)."""
  if name in _IMAGE_INFO:
    return dict(_IMAGE_INFO[name]["splits"])
  from jgen.data.builders import TOY2D_SPLIT_SIZES

  return dict(TOY2D_SPLIT_SIZES)


def _catalogue_splits(builder) -> dict[str, int]:
  """A catalogue dataset's own splits and sizes ({} where TFDS has no metadata for it, as under mock_data)."""
  return {split: info.num_examples for split, info in builder.info.splits.items()}


def _resolve_validation_size(name: str, validation_size: int, train_size: int) -> int:
  """The validation size to carve from a train split of `train_size` (the default where negative)."""
  if validation_size < 0:
    if name in DEFAULT_VALIDATION_SIZE:
      validation_size = DEFAULT_VALIDATION_SIZE[name]
    else:
      validation_size = int(train_size * TFDS_VALIDATION_FRACTION)
  if validation_size >= train_size:
    raise UserError(f"data.validation_size={validation_size} leaves no training examples of {name} "
                    f"(its train split has {train_size}); set data.validation_size below {train_size}")
  return validation_size


def _carve(name: str, split: str, validation_size: int, train_size: int) -> tuple[int, int]:
  """[start, stop) of `split` ("train" or "validation") within a train split of `train_size` examples."""
  if split == "train":
    return 0, train_size - validation_size
  if validation_size == 0:
    raise UserError(f"dataset {name} has no validation split with data.validation_size=0; "
                    "set data.validation_size > 0 (or -1 for the dataset's default)")
  return train_size - validation_size, train_size


def load(name: str, split: str, data_dir: str | None = None, source_dir: str | None = None,
         validation_size: int = -1):
  """A random-access source over one split: "train", "validation" or "test".

  validation_size: examples at the end of the prepared train split that form "validation"
  ("train" is the rest); -1 = the dataset's default (DEFAULT_VALIDATION_SIZE, or
  TFDS_VALIDATION_FRACTION of a catalogue dataset's train), 0 = no
  validation split. It does not apply to a catalogue dataset with its own validation
  split. Catalogue datasets also take TFDS split expressions such as "train[:90%]",
  which read the catalogue's own splits as TFDS defines them.
  """
  _check_name(name)
  if name.startswith(TFDS_PREFIX):
    return _load_catalogue(name, split, data_dir, validation_size)
  if split not in SPLITS:
    raise UserError(f"dataset {name} has no split {split!r}; it has {', '.join(SPLITS)}")
  data_dir = data_dir or default_data_dir()
  if is_text(name):  # prepared with a validation split of documents; validation_size does not apply
    return _load_text(name, split, data_dir, source_dir)
  prepare(name, source_dir=source_dir, data_dir=data_dir)
  train_size = _prepared_splits(name)["train"]
  # Checked for every split, so a bad size fails as early as the first read of any split.
  validation_size = _resolve_validation_size(name, validation_size, train_size)
  with _quiet_tfds():
    builder = _local_builder(name, data_dir, source_dir)
    if split == "test":
      return _Source(builder.as_data_source("test"))
    start, stop = _carve(name, split, validation_size, train_size)
    return _Source(builder.as_data_source("train"), start=start, stop=stop)


def _load_catalogue(name: str, split: str, data_dir: str | None, validation_size: int):
  import tensorflow_datasets as tfds

  builder = _tfds_builder(name, data_dir)
  keys = _tfds_keys(name, builder.info.features)
  splits = _catalogue_splits(builder)
  tfds_name = name[len(TFDS_PREFIX):]
  if split not in ("train", "validation") or "validation" in splits:
    _check_split(name, split, list(splits))
    return _Source(tfds.data_source(tfds_name, split=split, data_dir=data_dir), *keys)
  # No validation split of its own: carve it from the end of train, as for the local datasets.
  train = tfds.data_source(tfds_name, split="train", data_dir=data_dir)
  validation_size = _resolve_validation_size(name, validation_size, len(train))
  start, stop = _carve(name, split, validation_size, len(train))
  return _Source(train, *keys, start=start, stop=stop)


def _with_validation(name: str, splits: dict[str, int], validation_size: int) -> dict[str, int]:
  """Prepared splits {train, test} -> {train (reduced), validation, test}; no validation where its size is 0."""
  validation_size = _resolve_validation_size(name, validation_size, splits["train"])
  out = {"train": splits["train"] - validation_size}
  if validation_size:
    out["validation"] = validation_size
  return {**out, **{s: n for s, n in splits.items() if s != "train"}}


def info(name: str, data_dir: str | None = None, validation_size: int = -1,
         source_dir: str | None = None) -> dict[str, Any]:
  """What a dataset holds: kind ("image" | "points" | "tokens"), shape, dtype, num_classes, splits {name: size}.

  The splits are those `load` serves with the same `validation_size`: train (less the
  validation examples), validation (absent where validation_size is 0) and test.
  A text dataset is prepared first (its vocabulary comes from the data); its splits
  count windows and hold documents of their own, so validation_size does not apply.
  """
  _check_name(name)
  if is_text(name):
    vocab = text_vocab(name, data_dir, source_dir)
    splits = {split: len(load(name, split, data_dir, source_dir)) for split in SPLITS}
    return {"name": name, "description": DATASETS[text.parse_name(name)[0]], "kind": "tokens",
            "shape": (text.parse_name(name)[1],), "dtype": "int32", "num_classes": 0, "vocab_size": len(vocab),
            "vocab": vocab.chars, "splits": splits}
  if name in _IMAGE_INFO:
    out = dict(_IMAGE_INFO[name], splits=_with_validation(name, _prepared_splits(name), validation_size))
    if name == "fashion_mnist":
      from jgen.data.builders import FASHION_MNIST_CLASSES

      out["class_names"] = FASHION_MNIST_CLASSES
    return {"name": name, "description": DATASETS[name], **out}
  if name.startswith(TOY2D_PREFIX):
    kind = name[len(TOY2D_PREFIX):]
    return {"name": name, "description": DATASETS[name], "kind": "points", "shape": (2,),
            "dtype": "float32", "num_classes": toy2d.NUM_CLASSES[kind],
            "splits": _with_validation(name, _prepared_splits(name), validation_size)}
  builder = _tfds_builder(name, data_dir)
  features = builder.info.features
  image_key, label_key = _tfds_keys(name, features)
  num_classes = getattr(features[label_key], "num_classes", None) if label_key else None
  splits = _catalogue_splits(builder)
  if "train" in splits and "validation" not in splits:
    splits = _with_validation(name, splits, validation_size)
  return {"name": name, "description": f"TFDS catalogue dataset {builder.name}", "kind": "image",
          "shape": tuple(features[image_key].shape), "dtype": np.dtype(features[image_key].np_dtype).name,
          "num_classes": num_classes or 1, "splits": splits}
