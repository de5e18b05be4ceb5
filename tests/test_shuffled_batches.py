import numpy as np
import pytest

from jgen.data.shuffled_batches import ShuffledIndexBatches


@pytest.mark.parametrize("n,batch", [(20, 8), (12, 4), (5, 13), (7, 7)])
def test_batches_cut_the_concatenated_epoch_permutations(n, batch):
  batches = ShuffledIndexBatches(n, batch, seed=5)
  epochs = 3 * batch + 2  # enough epochs for 3 * n batches
  stream = np.concatenate([np.random.default_rng([5, e]).permutation(n) for e in range(epochs)])
  for i in range(3 * n):  # out of order on purpose: batch i depends only on i
    j = (7 * i) % (3 * n)
    np.testing.assert_array_equal(batches[j], stream[j * batch:(j + 1) * batch])


def test_every_epoch_is_a_fresh_permutation_of_all_records():
  batches = ShuffledIndexBatches(40, 8, seed=1)
  first = np.concatenate([batches[i] for i in range(5)])
  second = np.concatenate([batches[i] for i in range(5, 10)])
  assert sorted(first) == list(range(40)) == sorted(second)
  assert not np.array_equal(first, second) and not np.array_equal(first, np.arange(40))
  other = np.concatenate([ShuffledIndexBatches(40, 8, seed=2)[i] for i in range(5)])
  assert not np.array_equal(first, other)


def test_a_new_reader_gives_the_same_batches():
  read = ShuffledIndexBatches(1000, 64, seed=3)
  seen = [read[i] for i in range(40)]  # crosses two epoch boundaries
  again = ShuffledIndexBatches(1000, 64, seed=3)
  for i in (39, 0, 17, 15, 16):
    np.testing.assert_array_equal(again[i], seen[i])


def test_bad_arguments_are_refused():
  with pytest.raises(ValueError, match="seed"):
    ShuffledIndexBatches(10, 2, seed=-1)
  with pytest.raises(ValueError, match="batch_size"):
    ShuffledIndexBatches(10, 0, seed=0)
  assert len(ShuffledIndexBatches(0, 4, seed=0)) == 0
  with pytest.raises(IndexError):
    ShuffledIndexBatches(0, 4, seed=0)[0]
