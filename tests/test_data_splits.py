"""Train / validation / test: the validation split carved from the end of train, locally and for TFDS catalogue datasets."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jgen.data import builders, pipeline, sources
from jgen.data.toy2d import TOY2D_KINDS, sample_toy2d_with_labels
from jgen.errors import UserError
from tests.helpers import read_all


@pytest.mark.parametrize("name", ["digits", "toy2d_circles"])
@pytest.mark.parametrize("validation_size", [-1, 100])
def test_train_and_validation_partition_the_prepared_train_split(data_dir, name, validation_size):
  whole_x, whole_label = read_all(sources.load(name, "train", data_dir=data_dir, validation_size=0))
  expected = sources.DEFAULT_VALIDATION_SIZE[name] if validation_size < 0 else validation_size
  cut = len(whole_x) - expected
  train = sources.load(name, "train", data_dir=data_dir, validation_size=validation_size)
  validation = sources.load(name, "validation", data_dir=data_dir, validation_size=validation_size)
  assert (len(train), len(validation)) == (cut, expected)
  # train then validation is the prepared split itself, in order: disjoint and nothing lost.
  for part, source in [(slice(0, cut), train), (slice(cut, None), validation)]:
    x, label = read_all(source)  # the batched read
    np.testing.assert_array_equal(x, whole_x[part])
    np.testing.assert_array_equal(label, whole_label[part])
    np.testing.assert_array_equal(source[0]["x"], whole_x[part][0])  # single reads agree
    np.testing.assert_array_equal(source[-1]["x"], whole_x[part][-1])
    with pytest.raises(IndexError):
      source[len(source)]
    with pytest.raises(IndexError):
      source.__getitems__([0, len(source)])
  if name.startswith("toy2d_"):  # the points of the generator, train seed
    points, _ = sample_toy2d_with_labels(name[len("toy2d_"):], 100_000, seed=builders.TOY2D_SPLIT_SEEDS["train"])
    np.testing.assert_array_equal(read_all(validation)[0], points[cut:])


def test_default_validation_sizes():
  assert sources.DEFAULT_VALIDATION_SIZE == {"fashion_mnist": 10_000, "digits": 300,
                                             **{"toy2d_" + k: 10_000 for k in TOY2D_KINDS}}
  for name, size in sources.DEFAULT_VALIDATION_SIZE.items():
    assert sources.info(name)["splits"]["validation"] == size
  assert sources.info("fashion_mnist")["splits"] == {"train": 50_000, "validation": 10_000, "test": 10_000}
  assert sources.info("digits")["splits"] == {"train": 1197, "validation": 300, "test": 300}
  assert sources.info("toy2d_moons")["splits"] == {"train": 90_000, "validation": 10_000, "test": 10_000}
  assert sources.info("digits", validation_size=97)["splits"] == {"train": 1400, "validation": 97, "test": 300}


def test_bad_validation_sizes_are_one_line_user_errors(data_dir):
  with pytest.raises(UserError, match=r"set data.validation_size > 0") as err:
    sources.load("digits", "validation", data_dir=data_dir, validation_size=0)
  assert "\n" not in str(err.value)
  assert len(sources.load("digits", "train", data_dir=data_dir, validation_size=0)) == 1497
  for size in (1497, 5000):
    for split in ("train", "validation", "test"):
      with pytest.raises(UserError, match=f"validation_size={size} .*train split has 1497.*below 1497") as err:
        sources.load("digits", split, data_dir=data_dir, validation_size=size)
      assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="train split has 1497"):
      sources.info("digits", validation_size=size)
  assert len(sources.load("digits", "train", data_dir=data_dir, validation_size=1496)) == 1


# Pipelines.


def fake_catalogue_source(builder, split, **kwargs):
  """Stands in for `DatasetBuilder.as_data_source`: 12 examples shaped by the builder's real features.

  (`mock_data`'s default fake source cannot serve batched reads in this TFDS version.)
  """
  shape = builder.info.features["image"].shape
  rng = np.random.default_rng(len(split))
  return [{"image": rng.integers(0, 256, shape, dtype=np.uint8), "label": np.int64(i)} for i in range(12)]


def test_tfds_catalogue_path_with_mocked_data(tmp_path):
  with tfds.testing.mock_data(as_data_source_fn=fake_catalogue_source):
    # mnist has no validation split: the last 10% of train (1 of the 12 fake examples) is carved off.
    source = sources.load("tfds:mnist", "train", data_dir=str(tmp_path))
    assert len(source) == 11
    assert len(sources.load("tfds:mnist", "validation", data_dir=str(tmp_path))) == 1
    example = source[3]
    assert set(example) == {"x", "label"} and int(example["label"]) == 3
    assert example["x"].shape == (28, 28, 1) and example["x"].dtype == np.uint8
    batch = next(pipeline.train_iterator(source, batch_size=4, seed=0))
    assert batch["x"].shape == (4, 28, 28, 1) and batch["x"].dtype == np.uint8
    for x, label in zip(batch["x"], batch["label"]):
      np.testing.assert_array_equal(x, source[int(label)]["x"])
    train = sources.load("tfds:mnist", "train", data_dir=str(tmp_path), validation_size=4)
    validation = sources.load("tfds:mnist", "validation", data_dir=str(tmp_path), validation_size=4)
    np.testing.assert_array_equal(read_all(train)[1], np.arange(8))
    np.testing.assert_array_equal(read_all(validation)[1], np.arange(8, 12))
    with pytest.raises(UserError, match="set data.validation_size > 0"):
      sources.load("tfds:mnist", "validation", data_dir=str(tmp_path), validation_size=0)
    with pytest.raises(UserError, match="train split has 12"):
      sources.load("tfds:mnist", "train", data_dir=str(tmp_path), validation_size=12)
    meta = sources.info("tfds:mnist", data_dir=str(tmp_path))
    assert meta["shape"] == (28, 28, 1) and meta["num_classes"] == 10 and meta["kind"] == "image"
    with pytest.raises(UserError, match="no dataset 'no_such_set'"):
      sources.load("tfds:no_such_set", "train", data_dir=str(tmp_path))


def test_tfds_catalogue_validation_split(tmp_path, monkeypatch):
  """A catalogue dataset's own validation split is used as it is; one without is carved from train."""
  requested = []

  def recording_source(builder, split, **kwargs):
    requested.append(split)
    return fake_catalogue_source(builder, split, **kwargs)

  sizes = {"train": 12, "validation": 5, "test": 3}  # what TFDS's metadata would say (mock_data has none)
  monkeypatch.setattr(sources, "_catalogue_splits", lambda builder: dict(sizes))
  with tfds.testing.mock_data(as_data_source_fn=recording_source):
    for split in ("train", "validation", "train[:50%]"):
      assert len(sources.load("tfds:mnist", split, data_dir=str(tmp_path), validation_size=4)) == 12
    assert requested == ["train", "validation", "train[:50%]"]
    assert sources.info("tfds:mnist", data_dir=str(tmp_path))["splits"] == sizes
    del sizes["validation"]
    assert len(sources.load("tfds:mnist", "validation", data_dir=str(tmp_path), validation_size=4)) == 4
    assert requested[-1] == "train"
    assert sources.info("tfds:mnist", data_dir=str(tmp_path))["splits"]["validation"] == 1
    assert sources.info("tfds:mnist", data_dir=str(tmp_path), validation_size=4)["splits"] == {
        "train": 8, "validation": 4, "test": 3}
    with pytest.raises(UserError, match="no split 'valid'"):
      sources.load("tfds:mnist", "valid", data_dir=str(tmp_path))
