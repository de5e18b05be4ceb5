"""TFDS builders that prepare jgen's datasets offline from local files.

They write array_record files with `tfds.features.Tensor` features only (no
TensorFlow needed to write or read), read back with `builder.as_data_source`.
Every example is {"x": data, "label": int64}. Names carry a `jgen_` prefix so
they never shadow (or trigger a download of) a TFDS catalogue dataset.
Examples are stored in generation order (shuffling happens in the pipeline).
"""

import os

import numpy as np
import tensorflow_datasets as tfds

from jgen import cache_paths
from jgen.data import idx, toy2d
from jgen.errors import UserError

FILE_FORMAT = "array_record"
SYSTEM_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_SIZE = 300
TOY2D_SPLIT_SIZES = {"train": 100_000, "test": 10_000}
# Train and test points come from disjoint seeds of the same sampler.
TOY2D_SPLIT_SEEDS = {"train": 0, "test": 1}


def _x_feature(shape, dtype):
  # Raw bytes rather than a list of ints: several times faster to write and to decode.
  return tfds.features.Tensor(shape=shape, dtype=dtype, encoding=tfds.features.Encoding.BYTES)


def _info(builder, description, x_feature):
  features = tfds.features.FeaturesDict({
      "x": x_feature,
      "label": tfds.features.Tensor(shape=(), dtype=np.int64),
  })
  return tfds.core.DatasetInfo(builder=builder, description=description, features=features,
                               supervised_keys=("x", "label"), disable_shuffling=True)


def _examples(x: np.ndarray, label: np.ndarray):
  for i in range(len(x)):
    yield i, {"x": x[i], "label": int(label[i])}


def _fashion_mnist_cache_dir() -> str:
  # Where scripts/get_fashion_mnist.sh unpacks the Debian package when it cannot install it.
  return os.path.join(cache_paths.cache_home(), "fashion-mnist")


def _has_fashion_mnist_files(directory: str) -> bool:
  return all(idx.find_idx(directory, stem) for stems in _FASHION_MNIST_FILES.values() for stem in stems)


def _default_fashion_mnist_dir() -> str:
  """The Debian path if it holds the files, else the cache if it does, else the Debian path."""
  for directory in (SYSTEM_FASHION_MNIST_DIR, _fashion_mnist_cache_dir()):
    if _has_fashion_mnist_files(directory):
      return directory
  return SYSTEM_FASHION_MNIST_DIR


def fashion_mnist_dir(source_dir: str | None = None) -> str:
  """Where the Fashion-MNIST IDX files are: the argument, $JGEN_FASHION_MNIST_DIR, the Debian
  path (apt-get install -y dataset-fashion-mnist), or ${JGEN_CACHE:-~/.cache/jgen}/fashion-mnist
  (where `make data` unpacks that package without root)."""
  return source_dir or os.environ.get("JGEN_FASHION_MNIST_DIR") or _default_fashion_mnist_dir()


def fashion_mnist_files(source_dir: str | None = None) -> dict[str, tuple[str, str]]:
  """split -> (images path, labels path); a one-line UserError naming how to get them if absent."""
  directory = fashion_mnist_dir(source_dir)
  files = {split: tuple(idx.find_idx(directory, stem) for stem in stems)
           for split, stems in _FASHION_MNIST_FILES.items()}
  missing = [stem for split, stems in _FASHION_MNIST_FILES.items()
             for stem, path in zip(stems, files[split]) if path is None]
  if missing:
    raise UserError(
        f"Fashion-MNIST IDX files not found in {directory} (missing {', '.join(missing)}): "
        "install them with `apt-get install -y dataset-fashion-mnist`, "
        "or pass --source DIR / set JGEN_FASHION_MNIST_DIR to a directory holding them")
  return files


def read_fashion_mnist(split: str, source_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Images uint8 [N, 28, 28, 1] and labels int64 [N] of one split, straight from the IDX files."""
  images_path, labels_path = fashion_mnist_files(source_dir)[split]
  images, labels = idx.read_idx(images_path), idx.read_idx(labels_path)
  if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
    raise UserError(f"{images_path} and {labels_path} are not a Fashion-MNIST split: "
                    f"images {images.shape}, labels {labels.shape}; install them again")
  return images[..., None].astype(np.uint8), labels.astype(np.int64)


class JgenFashionMnist(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST from its IDX files: 60000 train / 10000 test 28x28 grey images, 10 classes."""

  VERSION = tfds.core.Version("1.0.0")

  def __init__(self, *, source_dir: str | None = None, **kwargs):
    self.source_dir = source_dir
    super().__init__(**kwargs)

  def _info(self):
    return _info(self, "Fashion-MNIST read from local IDX files.",
                 _x_feature((28, 28, 1), np.uint8))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in _FASHION_MNIST_FILES}

  def _generate_examples(self, split):
    return _examples(*read_fashion_mnist(split, self.source_dir))


def digits_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """scikit-learn's bundled 8x8 digits as uint8 [N, 8, 8, 1] in 0..255, split by a fixed seed."""
  from sklearn.datasets import load_digits

  digits = load_digits()
  # Pixels are counts 0..16; spread them over the 8-bit range like the other image sets.
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  labels = digits.target.astype(np.int64)
  order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(images))
  # Each split keeps the bundled order so records can be traced back to sklearn's.
  test = np.sort(order[:DIGITS_TEST_SIZE])
  train = np.sort(order[DIGITS_TEST_SIZE:])
  return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


class JgenDigits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 handwritten digits: 1497 train / 300 test, 10 classes."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return _info(self, "scikit-learn's bundled 8x8 digits, pixels rescaled to 0..255.",
                 _x_feature((8, 8, 1), np.uint8))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in ("train", "test")}

  def _generate_examples(self, split):
    return _examples(*digits_arrays()[split])


class JgenToy2d(tfds.core.GeneratorBasedBuilder):
  """2-D toy distributions, one builder config per kind, generated from fixed seeds."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=kind, description=toy2d.DESCRIPTIONS[kind])
                     for kind in toy2d.TOY2D_KINDS]

  def _info(self):
    return _info(self, f"2-D toy distribution: {toy2d.DESCRIPTIONS[self.builder_config.name]}.",
                 _x_feature((2,), np.float32))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in TOY2D_SPLIT_SIZES}

  def _generate_examples(self, split):
    points, labels = toy2d.sample_toy2d_with_labels(
        self.builder_config.name, TOY2D_SPLIT_SIZES[split], TOY2D_SPLIT_SEEDS[split])
    return _examples(points, labels)


def text_config_name(base: str, files: list[str]) -> str:
  """One prepared dataset per corpus: named by the corpus and a hash of its files' paths and sizes."""
  import hashlib

  digest = hashlib.sha256()
  for path in files:
    digest.update(f"{os.path.abspath(path)}\0{os.path.getsize(path)}\0".encode())
  return f"{base}_{digest.hexdigest()[:12]}"


class JgenText(tfds.core.GeneratorBasedBuilder):
  """A text corpus as documents of character ids (int32 [length]), split by document; the vocabulary
  (from the training split) is stored in the dataset's metadata as `vocab`."""

  VERSION = tfds.core.Version("1.0.0")

  def __init__(self, *, files: list[str], **kwargs):
    self.files = list(files)
    super().__init__(**kwargs)

  def _info(self):
    features = tfds.features.FeaturesDict({
        "x": tfds.features.Tensor(shape=(None,), dtype=np.int32, encoding=tfds.features.Encoding.BYTES),
        "label": tfds.features.Tensor(shape=(), dtype=np.int64),
    })
    return tfds.core.DatasetInfo(builder=self, description="Text documents as character ids.", features=features,
                                 metadata=tfds.core.MetadataDict(), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    from jgen.data import text

    splits = text.split_documents_by_hash(text.read_documents(self.files))
    vocab = text.Vocab.from_documents(splits["train"])
    self.info.metadata["vocab"] = vocab.chars
    return {split: self._generate_examples(docs, vocab) for split, docs in splits.items()}

  def _generate_examples(self, docs, vocab):
    for i, doc in enumerate(docs):
      yield i, {"x": vocab.encode(doc), "label": 0}
