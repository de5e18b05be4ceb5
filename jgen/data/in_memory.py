"""A random-access source read once into arrays, so a training batch is one fancy-indexing of numpy arrays.

Decoding records one by one (TFDS features, array_record) costs tens of microseconds an
example: on an accelerator that is the whole step (a 128-image batch of Fashion-MNIST
took ~15 ms to read, the step ~2 ms). Datasets that fit comfortably in memory are
therefore decoded once, in the order of their records, with the loader's own per-example
transform; the pipeline still shuffles and batches record indices the same way, so the
batches are the same arrays in the same order as reading the records each time.
"""

import numpy as np

# The most a cached split may hold; larger ones are read record by record as before.
MAX_BYTES = 1 << 29  # 512 MiB
READ_CHUNK = 2048


class InMemorySource:
  """`source`'s examples after `transform`, as stacked arrays; `read_batch(indices)` gives a batch dict."""

  def __init__(self, source, transform, arrays: dict[str, np.ndarray] | None = None):
    if arrays is None:
      from jgen.data.pipeline import _read_batch

      n = len(source)
      chunks = [_read_batch(np.arange(s, min(s + READ_CHUNK, n)), source=source, transform=transform)
                for s in range(0, n, READ_CHUNK)]
      arrays = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    self.arrays = arrays

  def __len__(self) -> int:
    return len(next(iter(self.arrays.values())))

  def __getitem__(self, index):
    return {key: value[index] for key, value in self.arrays.items()}

  def read_batch(self, indices) -> dict[str, np.ndarray]:
    indices = np.asarray(indices, np.int64)
    return {key: value[indices] for key, value in self.arrays.items()}


def cached(source, transform, max_bytes: int = MAX_BYTES):
  """An InMemorySource of `source` where its transformed examples fit in `max_bytes`, else `source` itself."""
  n = len(source)
  if n == 0 or isinstance(source, InMemorySource):
    return source
  first = transform(source[0])
  size = sum(np.asarray(v).nbytes for v in first.values()) * n
  return InMemorySource(source, transform) if size <= max_bytes else source
