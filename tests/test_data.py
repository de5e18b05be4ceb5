"""The data layer on real data: offline TFDS builders, toy samplers, grain pipelines."""

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jgen.data import builders, idx, pipeline, sources, toy2d
from jgen.data.toy2d import TOY2D_KINDS, sample_toy2d, sample_toy2d_with_labels
from jgen.errors import UserError
from tests.helpers import read_all


@pytest.fixture(scope="session")
def fashion_dir(data_dir):
  return sources.prepare("fashion_mnist", data_dir=data_dir)


def list_source(n):
  """An in-memory source whose example i has x = [i] and label i, to trace where examples go."""
  return [{"x": np.array([i], np.uint8), "label": i} for i in range(n)]


def labels_of(batches):
  return np.concatenate([b["label"] for b in batches])


# IDX files.


def write_idx(path, array, code, compress):
  header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
  data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
  images = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
  floats = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
  write_idx(tmp_path / "a", images, 0x08, compress)
  write_idx(tmp_path / "b", floats, 0x0D, compress)
  np.testing.assert_array_equal(idx.read_idx(tmp_path / "a"), images)
  np.testing.assert_array_equal(idx.read_idx(tmp_path / "b"), floats)


def test_idx_corrupt_files_are_user_errors(tmp_path):
  write_idx(tmp_path / "good", np.zeros((4, 2), np.uint8), 0x08, False)
  good = (tmp_path / "good").read_bytes()
  for name, data in [("truncated", good[:-1]), ("magic", b"\x01" + good[1:]), ("type", good[:2] + b"\x07" + good[3:]),
                     ("gzip", b"\x1f\x8b" + b"garbage")]:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(UserError, match="corrupt IDX file"):
      idx.read_idx(tmp_path / name)


# Fashion-MNIST.


def test_fashion_mnist_builder_reads_the_idx_files_exactly(fashion_dir, data_dir):
  for split, size in [("train", 60_000), ("test", 10_000)]:
    source = sources.load("fashion_mnist", split, data_dir=data_dir, validation_size=0)  # the whole prepared split
    assert len(source) == size
    x, label = read_all(source)
    assert x.dtype == np.uint8 and x.shape == (size, 28, 28, 1)
    assert x.min() == 0 and x.max() == 255
    np.testing.assert_array_equal(np.bincount(label, minlength=10), np.full(10, size // 10))
    images, labels = builders.read_fashion_mnist(split)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(label, labels)
  # The first training image is an ankle boot in every copy of Fashion-MNIST.
  assert int(sources.load("fashion_mnist", "train", data_dir=data_dir)[0]["label"]) == 9
  # By default validation is the last 10000 training images of the IDX file.
  images, labels = builders.read_fashion_mnist("train")
  for split, part in [("train", slice(0, 50_000)), ("validation", slice(50_000, 60_000))]:
    x, label = read_all(sources.load("fashion_mnist", split, data_dir=data_dir))
    np.testing.assert_array_equal(x, images[part])
    np.testing.assert_array_equal(label, labels[part])


def test_prepare_is_idempotent_and_needs_no_source_once_built(fashion_dir, data_dir, tmp_path):
  info_file = os.path.join(fashion_dir, "dataset_info.json")
  mtime = os.path.getmtime(info_file)
  assert sources.prepare("fashion_mnist", source_dir=str(tmp_path / "gone"), data_dir=data_dir) == fashion_dir
  assert os.path.getmtime(info_file) == mtime


def test_missing_fashion_mnist_is_one_line_user_error(tmp_path, monkeypatch):
  missing = str(tmp_path / "no-such-dir")
  with pytest.raises(UserError) as err:
    sources.prepare("fashion_mnist", source_dir=missing, data_dir=str(tmp_path / "data"))
  message = str(err.value)
  assert "\n" not in message and "apt-get install" in message and missing in message
  assert not os.path.exists(tmp_path / "data" / "jgen_fashion_mnist" / "1.0.0")
  monkeypatch.setenv("JGEN_FASHION_MNIST_DIR", missing)
  with pytest.raises(UserError, match="JGEN_FASHION_MNIST_DIR"):
    sources.load("fashion_mnist", "train", data_dir=str(tmp_path / "data"))


def test_corrupt_fashion_mnist_file_is_user_error_and_leaves_nothing(tmp_path):
  source_dir = tmp_path / "fashion"
  source_dir.mkdir()
  for name in os.listdir(builders.fashion_mnist_dir()):
    data = (Path(builders.fashion_mnist_dir()) / name).read_bytes()
    (source_dir / name).write_bytes(data[:1000] if name.startswith("train-images") else data)
  with pytest.raises(UserError, match="corrupt IDX file .*train-images"):
    sources.prepare("fashion_mnist", source_dir=str(source_dir), data_dir=str(tmp_path / "data"))
  assert not os.listdir(tmp_path / "data" / "jgen_fashion_mnist")


def test_unknown_names_are_user_errors(data_dir):
  with pytest.raises(UserError, match="did you mean fashion_mnist"):
    sources.load("fashion-mnist", "train", data_dir=data_dir)
  with pytest.raises(UserError, match="toy2d_moons"):
    sources.info("toy2d_moon")
  with pytest.raises(UserError, match="no split 'valid'; it has train, validation, test"):
    sources.load("digits", "valid", data_dir=data_dir)


# Digits.


def test_digits_builder_is_the_bundled_set_split_1497_300(data_dir):
  from sklearn.datasets import load_digits

  parts = {split: read_all(sources.load("digits", split, data_dir=data_dir, validation_size=0))
           for split in ("train", "test")}
  assert len(parts["train"][0]) == 1497 and len(parts["test"][0]) == 300
  assert parts["train"][0].shape[1:] == (8, 8, 1) and parts["train"][0].dtype == np.uint8
  assert set(np.unique(parts["train"][1])) == set(range(10)) == set(np.unique(parts["test"][1]))
  # Both splits together are exactly sklearn's 1797 images (0..16 rescaled to 0..255) with their labels.
  bundled = load_digits()
  expected = np.concatenate([np.round(bundled.images * 255 / 16).reshape(-1, 64), bundled.target[:, None]], 1)
  got = np.concatenate([np.concatenate([x.reshape(-1, 64), y[:, None]], 1) for x, y in parts.values()])
  sort = lambda rows: rows[np.lexsort(rows.T[::-1])]
  np.testing.assert_array_equal(sort(got.astype(np.int64)), sort(expected.astype(np.int64)))
  assert sources.info("digits", validation_size=0)["splits"] == {"train": 1497, "test": 300}


# Toy 2-D distributions.


def angle_gap(a, b):
  return np.abs(np.angle(np.exp(1j * (a - b))))


@pytest.mark.parametrize("kind", TOY2D_KINDS)
def test_toy2d_samples_have_their_shape(kind):
  points, labels = sample_toy2d_with_labels(kind, 4000, seed=5)
  assert points.shape == (4000, 2) and points.dtype == np.float32 and labels.shape == (4000,)
  np.testing.assert_array_equal(points, sample_toy2d(kind, 4000, seed=5))
  assert not np.allclose(points, sample_toy2d(kind, 4000, seed=6))
  assert np.all((0.4 < points.std(0)) & (points.std(0) < 1.5)) and np.all(np.abs(points.mean(0)) < 0.5)
  assert set(np.unique(labels)) == set(range(toy2d.NUM_CLASSES[kind]))
  x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
  radius, angle = np.hypot(x, y), np.arctan2(y, x)
  if kind == "moons":
    # Moon 0: upper half of the unit circle about (-0.5, -0.25); moon 1: lower half about (0.5, 0.25).
    for label, (cx, cy), side in [(0, (-0.5, -0.25), 1), (1, (0.5, 0.25), -1)]:
      dx, dy = x[labels == label] - cx, y[labels == label] - cy
      assert np.all(np.abs(np.hypot(dx, dy) - 1) < 0.3)
      assert np.mean(side * dy > -0.1) > 0.99
  elif kind == "circles":
    for label, r in [(0, 1.0), (1, 0.5)]:
      assert abs(np.mean(radius[labels == label]) - r) < 0.01
      assert np.all(np.abs(radius[labels == label] - r) < 0.3)
  elif kind == "8gaussians":
    for k in range(8):
      center = np.sqrt(2) * np.array([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)])
      cluster = points[labels == k]
      np.testing.assert_allclose(cluster.mean(0), center, atol=0.02)
      np.testing.assert_allclose(cluster.std(0), 0.1, atol=0.015)
  elif kind == "checkerboard":
    assert np.all(np.abs(points) <= 2)
    assert np.all((np.floor(x) + np.floor(y)) % 2 == 0)
    cells = (np.floor(y) + 2) * 4 + np.floor(x) + 2
    assert len(np.unique(cells)) == 8
  elif kind == "swissroll":
    # Undo the 1/7 scale: (t cos t, t sin t) with t in [1.5 pi, 4.5 pi], so the angle follows the radius.
    t = radius * 7
    assert np.mean((1.5 * np.pi - 1 < t) & (t < 4.5 * np.pi + 1)) > 0.999
    assert np.mean(angle_gap(angle, t) < 0.6) > 0.98
  elif kind == "pinwheel":
    # Arm k starts at angle 2 pi k / 5 and turns by 0.25 exp(radius).
    expected = 2 * np.pi * labels / 5 + 0.25 * np.exp(radius)
    assert np.mean(angle_gap(angle, expected) < 0.3) > 0.98


def test_toy2d_dataset_holds_the_seeded_samples(data_dir):
  source = sources.load("toy2d_circles", "test", data_dir=data_dir)
  assert len(source) == 10_000
  x, label = read_all(source)
  expected_x, expected_label = sample_toy2d_with_labels("circles", 10_000, seed=builders.TOY2D_SPLIT_SEEDS["test"])
  np.testing.assert_array_equal(x, expected_x)
  np.testing.assert_array_equal(label, expected_label)
  meta = sources.info("toy2d_circles")
  assert meta["kind"] == "points" and meta["shape"] == (2,) and meta["splits"]["train"] == 90_000
  assert set(sources.DATASETS) >= {"fashion_mnist", "digits", *("toy2d_" + k for k in TOY2D_KINDS)}


# Loader arrays.


def test_to_arrays_keeps_images_uint8_and_fixes_other_dtypes():
  image = {"x": np.array([[0, 51, 255]], np.uint8), "label": np.int64(7)}
  out = pipeline.to_arrays(image)
  np.testing.assert_array_equal(out["x"], image["x"])
  assert out["x"].dtype == np.uint8 and out["label"].dtype == np.int32 and out["label"] == 7
  points = pipeline.to_arrays({"x": np.array([-1.5, 2.25], np.float64), "label": 0})
  assert points["x"].dtype == np.float32
  np.testing.assert_array_equal(points["x"], [-1.5, 2.25])
  tokens = pipeline.to_arrays({"x": np.array([3, 70000], np.int64)})  # no label: 0
  assert tokens["x"].dtype == np.int32 and tokens["label"].dtype == np.int32 and tokens["label"] == 0
  np.testing.assert_array_equal(tokens["x"], [3, 70000])


def test_images_to_float_scales_uint8_only():
  scaled = pipeline.images_to_float(np.array([[0, 51, 255]], np.uint8))
  assert scaled.dtype == np.float32
  np.testing.assert_array_equal(scaled, np.array([[0.0, 0.2, 1.0]], np.float32))
  points = np.array([-1.5, 2.25], np.float32)
  assert pipeline.images_to_float(points) is points  # unchanged, not even copied
  tokens = np.array([1, 2], np.int32)
  assert pipeline.images_to_float(tokens).dtype == np.int32


def test_images_stay_uint8_through_the_pipelines(data_dir):
  source = sources.load("digits", "validation", data_dir=data_dir)
  x, labels = read_all(source)
  batch = next(pipeline.train_iterator(source, batch_size=32, seed=0))
  assert batch["x"].dtype == np.uint8 and batch["x"].shape == (32, 8, 8, 1) and batch["label"].dtype == np.int32
  assert batch["x"].max() > 1  # raw 0..255 pixels, not rescaled
  batches = list(pipeline.eval_batches(source, batch_size=128))
  assert all(b["x"].dtype == np.uint8 for b, _ in batches)
  np.testing.assert_array_equal(np.concatenate([b["x"][m] for b, m in batches]), x)
  np.testing.assert_array_equal(np.concatenate([b["label"][m] for b, m in batches]), labels)
  points = next(pipeline.train_iterator(sources.load("toy2d_circles", "validation", data_dir=data_dir),
                                        batch_size=8, seed=0))
  assert points["x"].dtype == np.float32 and points["x"].shape == (8, 2)


def test_train_iterator_shuffles_every_epoch_with_its_seed():
  source = list_source(40)
  it = pipeline.train_iterator(source, batch_size=8, seed=1)
  first, second = labels_of([next(it) for _ in range(5)]), labels_of([next(it) for _ in range(5)])
  assert sorted(first) == list(range(40)) == sorted(second)  # each epoch is a permutation
  assert not np.array_equal(first, second) and not np.array_equal(first, np.arange(40))
  other_it = pipeline.train_iterator(source, batch_size=8, seed=2)
  other = labels_of([next(other_it) for _ in range(5)])
  assert not np.array_equal(first, other)
  again = pipeline.train_iterator(source, batch_size=8, seed=1)
  np.testing.assert_array_equal(labels_of([next(again) for _ in range(5)]), first)


@pytest.mark.parametrize("split,batch_size", [("validation", 64), ("train", 256)])
def test_train_iterator_resumes_exactly_from_its_state(data_dir, split, batch_size):
  # Sliced sources (300 validation / 1197 train examples): 4 batches an epoch either way.
  source = sources.load("digits", split, data_dir=data_dir)
  it = pipeline.train_iterator(source, batch_size=batch_size, seed=3)
  for _ in range(3):
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  rest = [next(it) for _ in range(6)]  # crosses two epoch boundaries
  resumed = pipeline.train_iterator(source, batch_size=batch_size, seed=3)
  next(resumed)  # a position that the restore must overwrite
  resumed.set_state(state)
  for expected, batch in zip(rest, [next(resumed) for _ in range(6)]):
    assert batch["x"].dtype == np.uint8 and batch["x"].shape == (batch_size, 8, 8, 1)
    assert batch["label"].dtype == np.int32
    np.testing.assert_array_equal(batch["x"], expected["x"])
    np.testing.assert_array_equal(batch["label"], expected["label"])


def test_sliced_source_feeds_only_its_records_to_the_pipelines():
  source = sources._Source(list_source(50), start=20, stop=44)  # records 20..43 as 0..23
  assert len(source) == 24 and int(source[0]["label"]) == 20 and int(source[-1]["label"]) == 43
  it = pipeline.train_iterator(source, batch_size=8, seed=0)
  epoch = labels_of([next(it) for _ in range(3)])
  assert sorted(epoch) == list(range(20, 44))
  state = it.get_state()
  following = labels_of([next(it) for _ in range(4)])
  it.set_state(state)
  np.testing.assert_array_equal(labels_of([next(it) for _ in range(4)]), following)
  evaluated = list(pipeline.eval_batches(source, batch_size=10))
  np.testing.assert_array_equal(np.concatenate([b["label"][m] for b, m in evaluated]), np.arange(20, 44))
  with pytest.raises(ValueError, match="not within"):
    sources._Source(list_source(5), start=2, stop=6)


def test_processes_read_contiguous_slices_of_the_same_global_batches():
  """Concatenating the processes' batches gives one process's batch, in order: the step's examples and their
  positions (which pair them with per-position random numbers) do not depend on the number of processes."""
  source, processes = list_source(48), 4
  whole_it = pipeline.train_iterator(source, batch_size=8, seed=0)
  whole = labels_of([next(whole_it) for _ in range(6)])
  shards = []
  for p in range(processes):
    it = pipeline.train_iterator(source, batch_size=8, seed=0, process_index=p, process_count=processes)
    batches = [next(it) for _ in range(6)]  # 6 local batches of 2 = 12 = this process's share of an epoch
    assert all(b["label"].shape == (2,) for b in batches)
    shards.append(labels_of(batches))
    np.testing.assert_array_equal(shards[-1], whole.reshape(6, 8)[:, 2 * p:2 * p + 2].reshape(-1))
  assert sorted(np.concatenate(shards)) == list(range(48))
  with pytest.raises(ValueError, match="divisible"):
    pipeline.train_iterator(source, batch_size=10, seed=0, process_count=4)


@pytest.mark.parametrize("processes,batch_size", [(1, 64), (2, 64), (3, 96)])
def test_eval_batches_cover_every_example_once_in_order(data_dir, processes, batch_size):
  source = sources.load("digits", "test", data_dir=data_dir)  # 300 examples
  _, labels = read_all(source)
  per_process = [list(pipeline.eval_batches(source, batch_size=batch_size, process_index=p, process_count=processes))
                 for p in range(processes)]
  num_batches = -(-300 // batch_size)
  assert all(len(batches) == num_batches for batches in per_process)
  seen, masks = [], []
  for i in range(num_batches):  # the global batch is the processes' batches side by side
    for batches in per_process:
      batch, mask = batches[i]
      assert batch["x"].shape == (batch_size // processes, 8, 8, 1) and mask.dtype == bool
      seen.append(batch["label"][mask])
      masks.append(mask)
  np.testing.assert_array_equal(np.concatenate(seen), labels)
  mask = np.concatenate(masks)
  assert mask.sum() == 300 and mask[:300].all() and not mask[300:].any()
