"""The replay buffer of Langevin negatives (Du & Mordatch 2019), kept in `TrainState.buffers`.

A buffer of N examples is read as B rows of N / B slots (B the batch size):
example b of a batch draws one slot of row b, and its refined sample goes back
into that slot. The rows are contiguous blocks of the buffer, and the buffer and
the batch are both split over the devices along their first axis, so every
device reads and writes only its own share; and because the slots of a batch
lie in different rows they never collide, so the write is exact. Reading and
writing use a one-hot mask over the slots of a row (elementwise, no gather or
scatter across devices).

Each entry keeps its age: the Langevin rounds it went through since it was last
started from uniform noise.
"""

import jax
import jax.numpy as jnp


def init(rng: jax.Array, size: int, shape, low: float, high: float) -> dict:
  """`size` entries of uniform noise on [low, high], age 0."""
  return {"x": jax.random.uniform(rng, (size, *shape), jnp.float32, low, high),
          "age": jnp.zeros((size,), jnp.int32)}


def _rows(a, b):
  return a.reshape((b, a.shape[0] // b) + a.shape[1:])


def _mask(slots, rows, ndim):
  """[B, N / B, 1, ...]: True at each row's chosen slot."""
  hit = slots[:, None] == jnp.arange(rows)[None, :]
  return hit.reshape(hit.shape + (1,) * (ndim - 1))


def draw(buffer: dict, rng: jax.Array, batch_size: int, reinit_prob: float, low: float, high: float):
  """Starting points for a batch: a buffer entry per example, or with probability `reinit_prob` fresh uniform
  noise (age 0). Returns (x [B, ...], age [B], slots [B]): `slots` says where `write` puts the results."""
  x_all, age_all = buffer["x"], buffer["age"]
  rows = x_all.shape[0] // batch_size
  slot_key, reinit_key, noise_key = jax.random.split(rng, 3)
  slots = jax.random.randint(slot_key, (batch_size,), 0, rows)
  x = jnp.sum(jnp.where(_mask(slots, rows, x_all.ndim), _rows(x_all, batch_size), 0.0), axis=1)
  age = jnp.sum(jnp.where(_mask(slots, rows, 1), _rows(age_all, batch_size), 0), axis=1)
  fresh = jax.random.uniform(reinit_key, (batch_size,)) < reinit_prob
  noise = jax.random.uniform(noise_key, x.shape, x.dtype, low, high)
  x = jnp.where(fresh.reshape((-1,) + (1,) * (x.ndim - 1)), noise, x)
  return x, jnp.where(fresh, 0, age), slots


def write(buffer: dict, slots: jax.Array, x: jax.Array, age: jax.Array) -> dict:
  """The buffer with batch example b's `x` and `age` in slot `slots[b]` of row b."""
  b = x.shape[0]
  rows = buffer["x"].shape[0] // b
  new_x = jnp.where(_mask(slots, rows, buffer["x"].ndim), x[:, None], _rows(buffer["x"], b))
  new_age = jnp.where(_mask(slots, rows, 1), age[:, None], _rows(buffer["age"], b))
  return {"x": new_x.reshape(buffer["x"].shape), "age": new_age.reshape(buffer["age"].shape)}
