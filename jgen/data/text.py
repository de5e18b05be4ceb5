"""Text corpora for sequence models: documents, a character vocabulary, and fixed-length windows.

A corpus is a list of documents read from UTF-8 files: a fortune file's entries
(separated by lines holding only "%"), or the paragraphs (separated by blank
lines) of any other text file. Each document goes to train / validation / test
by a hash of its text, so the split is by document, deterministic, independent
of file order, and identical documents never straddle two splits.

Characters are the tokens. The vocabulary is built from the training split and
stored with the prepared dataset (and in the `DataSpec`, so a trained run decodes
its samples without the data): id 0 ends a document, id 1 stands for a character
the training split never had, ids 2.. are the training characters in code-point
order. A split is read as one stream (every document followed by the end mark)
and served as windows of `context` characters: every offset for training, and
non-overlapping windows for evaluation so that each character is scored once.
"""

import os
import re
import zlib

import numpy as np

from jgen import cache_paths
from jgen.errors import UserError

EOD, UNK = "\x00", "\ufffd"
EOD_ID, UNK_ID = 0, 1
# How an end-of-document mark is shown when samples are printed (the fortune files' own separator).
EOD_SHOWN = "\n%\n"
DEFAULT_CONTEXT = 256
MAX_CONTEXT = 1_000_000
# Documents whose text hash falls in these buckets (of 20) are held out: 5 % validation, 5 % test.
_BUCKETS, _TEST_BUCKET, _VALIDATION_BUCKET = 20, 0, 1

SYSTEM_FORTUNES_DIR = "/usr/share/games/fortunes"


# ---- names ------------------------------------------------------------------------------------------------------
def parse_name(name: str) -> tuple[str, int]:
  """"fortunes" -> ("fortunes", 256); "fortunes@64" -> ("fortunes", 64): the window length rides in the name,
  so the data layer knows it from `data.name` alone."""
  base, sep, context = name.partition("@")
  if not sep:
    return base, DEFAULT_CONTEXT
  if not context.isdigit() or not 2 <= int(context) <= MAX_CONTEXT:
    raise UserError(f"dataset {name!r}: the window length after '@' must be an integer from 2 to {MAX_CONTEXT:,}, "
                    f"e.g. {base}@256")
  return base, int(context)


# ---- where the corpus is ----------------------------------------------------------------------------------------
def _fortunes_cache_dir() -> str:
  # Where scripts/get_fortunes.sh unpacks the Debian package when it cannot install it.
  return os.path.join(cache_paths.cache_home(), "fortunes")


def _fortune_files(directory: str) -> list[str]:
  """A fortunes directory's collections: the files that have a `.dat` index next to them."""
  if not os.path.isdir(directory):
    return []
  return sorted(os.path.join(directory, f[:-4]) for f in os.listdir(directory)
                if f.endswith(".dat") and os.path.isfile(os.path.join(directory, f[:-4])))


def fortunes_dir(source: str | None = None) -> str:
  """The argument, $JGEN_FORTUNES_DIR, the Debian path, or the cache (`make data` without root)."""
  if source or os.environ.get("JGEN_FORTUNES_DIR"):
    return source or os.environ["JGEN_FORTUNES_DIR"]
  for directory in (SYSTEM_FORTUNES_DIR, _fortunes_cache_dir()):
    if _fortune_files(directory):
      return directory
  return SYSTEM_FORTUNES_DIR


def corpus_files(base: str, source: str | None) -> list[str]:
  """The files of corpus `base` ("fortunes" or "text"); a one-line UserError saying how to get them if absent."""
  if base == "fortunes":
    directory = fortunes_dir(source)
    files = _fortune_files(directory)
    if not files:
      raise UserError(f"the fortunes corpus is not in {directory}: install it with `apt-get install -y fortunes` "
                      f"(or run `make data`), or pass --source DIR / set JGEN_FORTUNES_DIR to a directory holding it")
    return files
  if not source:
    raise UserError("dataset text reads the UTF-8 file or directory named by --source (or data.source_dir)")
  if os.path.isfile(source):
    return [source]
  if os.path.isdir(source):
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(source) for f in names
                   if not f.startswith("."))
    if files:
      return files
  raise UserError(f"--source {source!r} is not a text file or a directory holding some")


# ---- documents --------------------------------------------------------------------------------------------------
def split_documents(text: str) -> list[str]:
  """A fortune file's entries, or a text's paragraphs; surrounding blank space dropped, empty ones skipped."""
  text = text.replace("\r\n", "\n").replace(EOD, "")
  if re.search(r"^%$", text, flags=re.MULTILINE):
    parts = re.split(r"^%\n?", text, flags=re.MULTILINE)
  else:
    parts = re.split(r"\n\s*\n", text)
  return [p.strip("\n") for p in parts if p.strip()]


def read_documents(files: list[str]) -> list[str]:
  docs = []
  for path in files:
    try:
      with open(path, encoding="utf-8", errors="replace") as f:
        docs.extend(split_documents(f.read()))
    except OSError as e:
      raise UserError(f"cannot read {path!r}: {e.strerror}") from None
  if not docs:
    raise UserError(f"no text found in {', '.join(files[:3])}: give UTF-8 text files")
  return docs


def split_of(document: str) -> str:
  """The split a document belongs to, by a hash of its text (deterministic, order-free)."""
  bucket = zlib.crc32(document.encode("utf-8")) % _BUCKETS
  return {_TEST_BUCKET: "test", _VALIDATION_BUCKET: "validation"}.get(bucket, "train")


def split_documents_by_hash(docs: list[str]) -> dict[str, list[str]]:
  out = {"train": [], "validation": [], "test": []}
  for doc in docs:
    out[split_of(doc)].append(doc)
  return out


# ---- the vocabulary ---------------------------------------------------------------------------------------------
class Vocab:
  """Characters <-> int32 ids; `chars[i]` is the character of id i."""

  def __init__(self, chars: str):
    if chars[:2] != EOD + UNK:
      raise ValueError("a vocabulary starts with the end-of-document and unknown marks")
    self.chars = chars
    self._ids = {c: i for i, c in enumerate(chars)}

  @classmethod
  def from_documents(cls, docs: list[str]) -> "Vocab":
    seen = set().union(*map(set, docs)) - {EOD, UNK}
    return cls(EOD + UNK + "".join(sorted(seen)))

  def __len__(self) -> int:
    return len(self.chars)

  def encode(self, text: str) -> np.ndarray:
    return np.array([self._ids.get(c, UNK_ID) for c in text], np.int32)

  def decode(self, ids, show_ends: bool = False) -> str:
    text = "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))
    return text.replace(EOD, EOD_SHOWN) if show_ends else text

  def unknown(self, text: str) -> list[str]:
    """Characters of `text` outside the vocabulary (first occurrences, in order)."""
    return list(dict.fromkeys(c for c in text if c not in self._ids or c in (EOD, UNK)))


def stream(documents_ids) -> np.ndarray:
  """Encoded documents -> one int32 stream, each document followed by the end-of-document id."""
  parts = []
  for ids in documents_ids:
    parts.extend([np.asarray(ids, np.int32), np.array([EOD_ID], np.int32)])
  return np.concatenate(parts) if parts else np.zeros((0,), np.int32)


# ---- windows ----------------------------------------------------------------------------------------------------
def num_windows(length: int, context: int, stride: int) -> int:
  return max((length - context) // stride + 1, 0)


class Windows:
  """A random-access source of windows [context] int32 over a token stream, one every `stride` tokens.

  Examples are {"x": ids, "label": 0}, like every other source, so the grain pipeline (shuffling, sharding,
  checkpointable iterator state) serves text unchanged.
  """

  def __init__(self, tokens: np.ndarray, context: int, stride: int):
    self.tokens, self.context, self.stride = np.asarray(tokens, np.int32), context, stride
    self._len = num_windows(len(self.tokens), context, stride)

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, index: int) -> dict:
    index = int(index)
    position = index + self._len if index < 0 else index
    if not 0 <= position < self._len:
      raise IndexError(f"window {index} is out of range for a source of {self._len} windows")
    start = position * self.stride
    return {"x": self.tokens[start:start + self.context].copy(), "label": np.int32(0)}

  def __getitems__(self, indices):
    return [self[i] for i in indices]

  def read_batch(self, indices) -> dict:
    """The windows at `indices` as the loader's batch (`pipeline.to_arrays` of each, stacked), in one indexing
    of the stream: a window is a view of it, so the split is never copied into memory window by window."""
    positions = np.asarray(indices, np.int64)
    positions = np.where(positions < 0, positions + self._len, positions)
    if positions.size and not (0 <= positions.min() and positions.max() < self._len):
      raise IndexError(f"a window index is out of range for a source of {self._len} windows")
    starts = positions * self.stride
    x = self.tokens[starts[:, None] + np.arange(self.context)]
    return {"x": x, "label": np.zeros(len(positions), np.int32)}

  def __repr__(self) -> str:
    return f"Windows({len(self.tokens)} tokens, context={self.context}, stride={self.stride})"


_STREAMS: dict = {}  # (prepared directory, split) -> its token stream, read once per process


def windows_for(split: str, context: int, read_stream, key) -> Windows:
  """Training reads every offset; validation and test non-overlapping windows (each character scored once)."""
  if key not in _STREAMS:
    _STREAMS[key] = read_stream()
  tokens = _STREAMS[key]
  stride = 1 if split == "train" else context
  if num_windows(len(tokens), context, stride) == 0:
    raise UserError(f"the {split} split holds {len(tokens)} characters, fewer than one window of {context}: "
                    f"use a shorter window (NAME@LENGTH) or more text")
  return Windows(tokens, context, stride)
