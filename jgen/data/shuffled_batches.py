"""The record indices of endless shuffled training batches, one numpy permutation per epoch.

Global batch i holds positions [i * B, (i + 1) * B) of the stream that concatenates
epoch 0's permutation of [0, n), epoch 1's, and so on, so a batch may straddle two
epochs and every epoch is one full pass in a fresh order. Epoch e's order is
`default_rng([seed, e]).permutation(n)`: computing it whole takes about a millisecond
for 60,000 records, where grain's per-element `shuffle` evaluates a block cipher for
each index (~2.5 ms for a batch of 128 on the 2-core CPU, ~5 % of a conv VAE's step).
Batch i depends only on (n, B, seed, i), so a resumed iterator reads the same batches.
"""

import sys

import grain
import numpy as np


class ShuffledIndexBatches(grain.MapDataset):
  """Endless [batch_size] int64 arrays of record indices in [0, num_records)."""

  def __init__(self, num_records: int, batch_size: int, seed: int):
    super().__init__([])
    if batch_size <= 0:
      raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not 0 <= seed < 2**32:
      raise ValueError(f"seed must be an integer in [0, 2**32), got {seed}")
    self._n, self._batch, self._seed = int(num_records), int(batch_size), int(seed)
    self._orders: dict[int, np.ndarray] = {}  # the latest epochs' permutations

  def __len__(self) -> int:
    return sys.maxsize if self._n else 0

  def __str__(self) -> str:
    return f"ShuffledIndexBatches(num_records={self._n}, batch_size={self._batch}, seed={self._seed})"

  def epoch_order(self, epoch: int) -> np.ndarray:
    """The permutation of [0, n) that epoch `epoch` reads in."""
    order = self._orders.get(epoch)
    if order is None:
      order = np.random.default_rng([self._seed, epoch]).permutation(self._n)
      # Readers move forward; keep this epoch and the one before (a batch straddling the boundary).
      self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
      self._orders[epoch] = order
    return order

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    if not 0 <= index < len(self):
      raise IndexError(f"batch {index} is out of range")
    start, stop = index * self._batch, (index + 1) * self._batch
    pieces = []
    while start < stop:  # usually one piece; two where the batch crosses into the next epoch
      epoch, offset = divmod(start, self._n)
      take = min(stop - start, self._n - offset)
      pieces.append(self.epoch_order(epoch)[offset:offset + take])
      start += take
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
