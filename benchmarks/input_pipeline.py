"""Batches/s of the training input pipeline, reading records one by one vs decoded once into memory.

  python benchmarks/input_pipeline.py --dataset fashion_mnist --batch 128 --batches 300

Both iterators yield the same batches (tests/test_in_memory.py); the first batch (and the one-off decode of the
in-memory copy) is timed separately from the steady state.
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import time

from jgen.data import pipeline, sources


def rate(source, batch: int, batches: int, cache: bool) -> tuple[float, float]:
  t0 = time.perf_counter()
  it = pipeline.train_iterator(source, batch_size=batch, seed=0, cache=cache)
  next(it)
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(batches):
    next(it)
  return first, batches / (time.perf_counter() - t0)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", default="fashion_mnist")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--batches", type=int, default=300)
  args = parser.parse_args()
  source = sources.load(args.dataset, "train")
  print(f"{args.dataset} train ({len(source):,} examples), batch {args.batch}")
  for name, cache in (("record by record", False), ("in memory", True)):
    first, per_s = rate(source, args.batch, args.batches, cache)
    print(f"  {name:17s} first batch {first:6.2f} s   {per_s:8.1f} batches/s   {1000 / per_s:6.2f} ms/batch")


if __name__ == "__main__":
  main()
