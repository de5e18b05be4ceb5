"""Raw records parsed straight to numpy equal TFDS's own decoding, record for record; anything the parser does not
read exactly is left to TFDS; a damaged prepared file is one line naming the directory to delete."""

import os
import shutil

import numpy as np
import pytest

from jgen.data import record_parser, sources
from jgen.errors import UserError


@pytest.fixture(scope="module")
def digits(data_dir):
  sources.prepare("digits", data_dir=data_dir)
  return sources.load("digits", "train", data_dir=data_dir, validation_size=0)


def test_every_record_equals_the_tfds_decoding(digits):
  assert digits._parse is not None, "the local datasets' features are read by the fast parser"
  inner = digits._source
  ids = list(range(len(inner)))
  ours = digits._parse(inner.data_source.__getitems__(ids))
  theirs = inner.__getitems__(ids)
  assert len(ours) == len(theirs) == 1497
  for a, b in zip(ours, theirs):
    for key in ("x", "label"):
      x, y = np.asarray(a[key]), np.asarray(b[key])
      assert x.dtype == y.dtype and x.shape == y.shape
      np.testing.assert_array_equal(x, y)
  # Through the source, slices and negative indices included, as the loader reads it.
  fast = digits.__getitems__([0, 5, -1])
  digits_slow = sources._Source(inner)
  digits_slow._parse = None
  slow = digits_slow.__getitems__([0, 5, -1])
  for a, b in zip(fast, slow):
    np.testing.assert_array_equal(a["x"], b["x"])
    assert a["label"] == b["label"] and a["label"].dtype == b["label"].dtype


def test_a_parser_that_misreads_is_not_used(digits, monkeypatch):
  inner = digits._source
  assert record_parser.for_source(inner, ["x", "label"]) is not None
  real = record_parser._field_reader

  def off_by_one(feature, key):
    read = real(feature, key)
    return (lambda fields: read(fields) + 1) if key == "label" else read

  monkeypatch.setattr(record_parser, "_field_reader", off_by_one)
  assert record_parser.for_source(inner, ["x", "label"]) is None


def test_features_it_does_not_read_are_left_to_tfds(digits):
  inner = digits._source
  assert record_parser.for_source(inner, ["x", "no_such_feature"]) is None
  assert record_parser.for_source(list(range(3)), ["x"]) is None  # not a TFDS data source


def test_a_damaged_prepared_file_is_one_line_naming_the_directory(tmp_path):
  data_dir = str(tmp_path / "data")
  prepared = sources.prepare("digits", data_dir=data_dir)
  train_file = [f for f in os.listdir(prepared) if "-train.array_record" in f][0]
  path = os.path.join(prepared, train_file)
  raw = bytearray(open(path, "rb").read())
  for i in range(len(raw) // 3, len(raw) // 3 + 200):  # inside a chunk: its stored hash no longer matches
    raw[i] ^= 0xFF
  open(path, "wb").write(bytes(raw))
  with pytest.raises(UserError, match=r"the prepared dataset in .*jgen_digits.* is damaged \(Corrupted"):
    src = sources.load("digits", "train", data_dir=data_dir)
    src.__getitems__(list(range(len(src))))
  shutil.rmtree(prepared)  # as the message says: the next load prepares it again
  src = sources.load("digits", "train", data_dir=data_dir)
  assert len(src.__getitems__(list(range(len(src))))) == len(src)
