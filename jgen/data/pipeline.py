"""Grain pipelines from a random-access source to batches of numpy arrays.

Training reads endless epochs, each a fresh seeded shuffle, cut into global
batches; every process reads its contiguous slice of each global batch, so the
examples of a step, and their order, do not depend on the number of processes; the iterator
state is a small JSON-able dict the checkpoint stores, so a resumed run reads
exactly the batches an uninterrupted one would. Evaluation reads one pass in
order, padding the last batch and marking the real examples with a mask.
Images stay uint8 on the host (a quarter of the bytes of float32 to move); the
loop turns them into [0, 1] floats on the device (jgen.data.spec.to_model_input).
"""

import functools
from typing import Any, Callable, Iterator, Mapping

import grain
import numpy as np

from jgen.data import in_memory
from jgen.data.shuffled_batches import ShuffledIndexBatches

Example = Mapping[str, Any]
Batch = dict[str, np.ndarray]

# Worker threads that read ahead of the training step, and how many batches they may hold.
READ_THREADS = 2
PREFETCH_BATCHES = 4


def to_arrays(example: Example) -> dict[str, np.ndarray]:
  """An example as the loader's arrays: uint8 images as they are, token ids int32, points float32.

  Other integer data becomes int32 and other data float32; label is int32 (0 where absent).
  """
  x = np.asarray(example["x"])
  if x.dtype != np.uint8:
    x = x.astype(np.int32 if np.issubdtype(x.dtype, np.integer) else np.float32)
  return {"x": x, "label": np.asarray(example.get("label", 0), np.int32)}


def images_to_float(x) -> np.ndarray:
  """uint8 images -> float32 in [0, 1]; anything else unchanged (for host code that needs float images)."""
  x = np.asarray(x)
  return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x


def _per_process_batch(batch_size: int, process_count: int) -> int:
  if batch_size % process_count:
    raise ValueError(f"batch_size {batch_size} is not divisible by the {process_count} processes")
  return batch_size // process_count


def _stack(examples) -> Batch:
  return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


def _read(source, indices) -> list:
  """Examples at `indices`, in one batched read where the source offers one (array_record does)."""
  indices = [int(i) for i in indices]
  if hasattr(source, "__getitems__"):
    return list(source.__getitems__(indices))
  return [source[i] for i in indices]


def _batch_indexable(source, transform) -> bool:
  """Whether `source.read_batch` gives `transform`'s batch: an in-memory source holds its examples transformed
  already; a source's own `read_batch` (text windows) gives `to_arrays`' batch."""
  return isinstance(source, in_memory.InMemorySource) or (transform is to_arrays and hasattr(source, "read_batch"))


def _read_batch(indices: np.ndarray, *, source, transform) -> Batch:
  if _batch_indexable(source, transform):
    return source.read_batch(indices)
  return _stack([transform(example) for example in _read(source, indices)])


def train_iterator(source, *, batch_size: int, seed: int, process_index: int = 0, process_count: int = 1,
                   transform: Callable[[Example], Example] = to_arrays,
                   cache: bool = True) -> grain.DatasetIterator:
  """Endless shuffled batches: this process's contiguous slice of each global batch of `batch_size`.

  The pipeline is record-index batches (jgen.data.shuffled_batches: a fresh seeded permutation every epoch)
  -> this process's slice -> read; a source that fits in memory is decoded once and read by indexing
  (jgen.data.in_memory), the same batches. Reading each slice at once is the same stream as mapping over the
  source element by element, several times faster on array_record. The result supports `get_state()` (a
  JSON-serialisable dict) and `set_state(state)`.
  """
  local_batch = _per_process_batch(batch_size, process_count)
  if cache and not _batch_indexable(source, transform):  # decoded once where they fit in memory (jgen.data.in_memory)
    source = in_memory.cached(source, transform)
  dataset = (
      ShuffledIndexBatches(len(source), batch_size, seed)  # the global batch's indices, the same on every process
      .map(lambda indices: indices[process_index * local_batch:(process_index + 1) * local_batch])
      .map(functools.partial(_read_batch, source=source, transform=transform))
  )
  # An in-memory batch is one fancy-indexing (~0.1 ms): handing it to reader threads costs more than it takes.
  threads = 0 if _batch_indexable(source, transform) else READ_THREADS
  options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=PREFETCH_BATCHES if threads else 0)
  return iter(dataset.to_iter_dataset(options))


def eval_batches(source, *, batch_size: int, process_index: int = 0, process_count: int = 1,
                 transform: Callable[[Example], Example] = to_arrays) -> Iterator[tuple[Batch, np.ndarray]]:
  """One in-order pass as (batch, mask) pairs; `mask` (bool [B]) marks real examples.

  Global batch i holds examples [i * batch_size, (i + 1) * batch_size); this process
  gets its contiguous slice of it, so concatenating the processes' batches in order
  gives the global batch. Slots past the end repeat real examples (mask False), and
  every process yields ceil(len(source) / batch_size) batches.
  """
  local_batch = _per_process_batch(batch_size, process_count)
  n = len(source)
  if n == 0:
    return
  for start in range(0, n, batch_size):
    first = start + process_index * local_batch
    slots = np.arange(first, first + local_batch)
    mask = slots < n
    yield _read_batch(slots % n, source=source, transform=transform), mask
