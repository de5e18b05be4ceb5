"""A split cached in memory gives the training pipeline exactly the batches of reading its records."""

import numpy as np

from jgen.data import in_memory, pipeline, sources


def test_cached_batches_equal_record_by_record_batches():
  source = sources.load("digits", "train")
  cached_it = pipeline.train_iterator(source, batch_size=64, seed=3)
  cached = [next(cached_it) for _ in range(25)]  # past one epoch of 1,197 digits
  state = cached_it.get_state()
  plain_it = pipeline.train_iterator(source, batch_size=64, seed=3, cache=False)  # records read one by one
  for a in cached:
    b = next(plain_it)
    assert a.keys() == b.keys()
    for key in a:
      assert a[key].dtype == b[key].dtype
      np.testing.assert_array_equal(a[key], b[key])
  assert plain_it.get_state() == state
  assert isinstance(in_memory.cached(source, pipeline.to_arrays, max_bytes=1 << 30), in_memory.InMemorySource)
  assert in_memory.cached(source, pipeline.to_arrays, max_bytes=0) is source
