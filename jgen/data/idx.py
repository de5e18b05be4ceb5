"""A reader for IDX files, the array format MNIST and Fashion-MNIST ship in.

An IDX file is two zero bytes, a type code, the number of dimensions, one
big-endian uint32 per dimension, then the array itself in big-endian order.
Files may be gzip-compressed (detected by their magic bytes, not their name).
"""

import gzip
import os

import numpy as np

from jgen.errors import UserError

_GZIP_MAGIC = b"\x1f\x8b"
# IDX type code -> big-endian numpy dtype.
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
  """Decodes the bytes of an (uncompressed) IDX file into a native-endian array."""

  def corrupt(why):
    return UserError(f"corrupt IDX file {name}: {why}; delete it and install it again")

  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise corrupt("bad magic number (expected two zero bytes)")
  dtype = _DTYPES.get(data[2])
  if dtype is None:
    raise corrupt(f"unknown type code 0x{data[2]:02x}")
  ndim = data[3]
  header = 4 + 4 * ndim
  if len(data) < header:
    raise corrupt("truncated header")
  shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
  expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) != expected:
    raise corrupt(f"{len(data)} bytes where shape {shape} needs {expected}")
  array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
  return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (plain or gzip) into a numpy array with its stored shape."""
  path = os.fspath(path)
  with open(path, "rb") as f:
    data = f.read()
  if data[:2] == _GZIP_MAGIC:
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError) as e:
      raise UserError(f"corrupt IDX file {path}: bad gzip data ({e}); delete it and install it again") from None
  return parse_idx(data, path)


def find_idx(directory: str | os.PathLike, stem: str) -> str | None:
  """The path of `stem` (e.g. "train-images-idx3-ubyte") in `directory`, gzipped or not."""
  for name in (stem + ".gz", stem):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  return None
