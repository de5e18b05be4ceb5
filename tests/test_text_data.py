"""The text source: the tokeniser round-trips, ids stay int32 through the pipeline, the split is by document and
deterministic, the vocabulary comes from the training split, and a missing corpus is one line."""

import numpy as np
import pytest

from jgen import cli
from jgen.data import pipeline, sources, text
from jgen.errors import UserError

CONTEXT = 16


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """300 paragraphs; one character (the ~) only in held-out documents."""
  rng = np.random.default_rng(0)
  words = ["the", "cat", "sat", "on", "a", "mat", "\u00e9t\u00e9", "and", "dog", "ran"]
  docs = [" ".join(rng.choice(words, size=rng.integers(3, 12))) + f" {i}." for i in range(300)]
  docs = [d + " ~" if text.split_of(d + " ~") != "train" else d for d in docs]
  path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
  path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
  return str(path), docs


def _stream_docs(source, vocab):
  """The documents of a split as the windows serve them (non-overlapping windows, joined)."""
  joined = vocab.decode(np.concatenate([source[i]["x"] for i in range(len(source))]))
  return [d for d in joined.split(text.EOD)]


def test_the_tokeniser_round_trips_text():
  sample = "Hello, w\u00f6rld!\n\tThe end: 42 %\u00e9\U0001f600"
  vocab = text.Vocab.from_documents([sample])
  ids = vocab.encode(sample)
  assert ids.dtype == np.int32 and ids.min() >= 2
  assert vocab.decode(ids) == sample
  assert vocab.encode("\u20ac").tolist() == [text.UNK_ID] and vocab.unknown("a\u20acH") == ["a", "\u20ac"]


def test_fortune_files_split_into_their_entries():
  assert text.split_documents("A\nB\n%\nC\n\nD\n%\n") == ["A\nB", "C\n\nD"]
  assert text.split_documents("one\npara\n\n\ntwo\n") == ["one\npara", "two"]


def test_the_split_is_by_document_and_deterministic(corpus, data_dir):
  path, docs = corpus
  vocab = sources.text_vocab(f"text@{CONTEXT}", data_dir, path)
  split_by_served = {d.replace("~", text.UNK): text.split_of(d) for d in docs}  # ~ is unknown to the vocabulary
  held_out = {"validation": set(), "test": set()}
  for split in held_out:
    source = sources.load(f"text@{CONTEXT}", split, data_dir, path)
    assert source.stride == CONTEXT  # each character scored once
    served = _stream_docs(source, vocab)
    # Whole documents (all but the one cut by the last window) of this split only, in a fixed order.
    assert all(split_by_served[d] == split for d in served[:-1])
    held_out[split] = set(served[:-1])
  assert held_out["validation"] and held_out["test"] and not held_out["validation"] & held_out["test"]
  again = sources.load(f"text@{CONTEXT}", "test", data_dir, path)
  np.testing.assert_array_equal(again[len(again) - 1]["x"], sources.load(f"text@{CONTEXT}", "test", data_dir,
                                                                          path)[-1]["x"])
  expected = [text.split_of(d) for d in docs]
  assert expected == [text.split_of(d) for d in docs] and 200 < expected.count("train") < 300


def test_the_vocabulary_comes_from_the_training_split(corpus, data_dir):
  path, docs = corpus
  vocab = sources.text_vocab(f"text@{CONTEXT}", data_dir, path)
  assert "~" not in vocab.chars[2:] and "\u00e9" in vocab.chars
  test = sources.load(f"text@{CONTEXT}", "test", data_dir, path)
  ids = np.concatenate([test[i]["x"] for i in range(len(test))])
  assert text.UNK_ID in ids  # the held-out-only character


def test_ids_stay_int32_through_the_pipeline(corpus, data_dir):
  path, _ = corpus
  source = sources.load(f"text@{CONTEXT}", "train", data_dir, path)
  assert source.stride == 1 and len(source) > 1000  # training reads every offset
  batch = next(pipeline.train_iterator(source, batch_size=8, seed=0))
  assert batch["x"].dtype == np.int32 and batch["x"].shape == (8, CONTEXT)
  batch, mask = next(pipeline.eval_batches(sources.load(f"text@{CONTEXT}", "validation", data_dir, path),
                                           batch_size=4))
  assert batch["x"].dtype == np.int32 and mask.all()
  info = sources.info(f"text@{CONTEXT}", data_dir, source_dir=path)
  assert info["kind"] == "tokens" and info["shape"] == (CONTEXT,) and info["vocab_size"] == len(info["vocab"])


def test_windows_read_in_one_indexing_are_the_windows_read_one_by_one(corpus, data_dir):
  """Text windows are read a batch at a time from the stream (never copied into memory window by window):
  the same batches, dtypes and iterator state as reading and stacking each window."""
  path, _ = corpus
  source = sources.load(f"text@{CONTEXT}", "train", data_dir, path)
  one_by_one = lambda example: pipeline.to_arrays(example)  # another transform: read window by window
  batched_it = pipeline.train_iterator(source, batch_size=64, seed=5)
  plain_it = pipeline.train_iterator(source, batch_size=64, seed=5, transform=one_by_one, cache=False)
  for _ in range(len(source) // 64 + 3):  # past one epoch
    a, b = next(batched_it), next(plain_it)
    assert a.keys() == b.keys()
    for key in a:
      assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
      np.testing.assert_array_equal(a[key], b[key])
  assert batched_it.get_state() == plain_it.get_state()
  validation = sources.load(f"text@{CONTEXT}", "validation", data_dir, path)
  for (a, mask_a), (b, mask_b) in zip(pipeline.eval_batches(validation, batch_size=7),
                                      pipeline.eval_batches(validation, batch_size=7, transform=one_by_one),
                                      strict=True):
    np.testing.assert_array_equal(mask_a, mask_b)
    for key in a:
      assert a[key].dtype == b[key].dtype
      np.testing.assert_array_equal(a[key], b[key])
  np.testing.assert_array_equal(source.read_batch([-1, 0])["x"], np.stack([source[-1]["x"], source[0]["x"]]))
  with pytest.raises(IndexError):
    source.read_batch([0, len(source)])


def test_a_missing_corpus_or_bad_name_is_one_line(tmp_path, data_dir, capsys):
  with pytest.raises(UserError, match="apt-get install -y fortunes"):
    sources.load("fortunes", "train", data_dir, str(tmp_path))
  for name in ("fortunes@x", "fortunes@1", "fortunes@100000000"):
    with pytest.raises(UserError, match="window length after '@' must be an integer from 2 to 1,000,000"):
      sources.load(name, "train", data_dir)
  with pytest.raises(UserError, match="--source"):
    sources.load("text@8", "train", data_dir)
  assert cli.main(["data", "prepare", "fortunes", "--source", str(tmp_path / "nothing")]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "fortunes" in err
