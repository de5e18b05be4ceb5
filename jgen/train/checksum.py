"""A checksum of every array of a train state, computed on the device, and whether its floats are all finite.

The checksums are saved with each checkpoint and compared after restore, so silently flipped bits
in a checkpoint's files are caught instead of restored. Each array's words are
summed with odd position weights in wrapping uint32 arithmetic: any single-bit
change moves the sum (2^b times an odd number is never 0 mod 2^32), two
independent weightings make a chance collision ~2^-64, and integer addition is
associative, so the value does not depend on the sharding or the device count.

The loop scans a state once before it writes it: the same pass over the arrays gives the sums and
whether any float is NaN or infinite (such a state is never written).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_K1 = np.uint32(0x9E3779B1)
_K2 = np.uint32(0x85EBCA77)


def _words(x: jax.Array) -> jax.Array:
  """The array's bits as uint32 words."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  size = x.dtype.itemsize
  if size == 4:
    return jax.lax.bitcast_convert_type(x, jnp.uint32)
  if size < 4:
    return jax.lax.bitcast_convert_type(x, {1: jnp.uint8, 2: jnp.uint16}[size]).astype(jnp.uint32)
  return jax.lax.bitcast_convert_type(x, jnp.uint32)  # 64-bit: one more axis of two words


def _add_and(a, b):
  return a[0] + b[0], a[1] + b[1], a[2] & b[2]


def _leaf_scan(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(first sum, second sum, every element finite) of one array."""
  x = jnp.asarray(x)
  w = _words(x).reshape(-1)
  pos = jnp.arange(w.size, dtype=jnp.uint32)
  odd = 2 * pos + 1
  terms = (w * odd * _K1, (w ^ (w >> 15)) * (odd * _K2 + pos * 2))
  floats = jnp.issubdtype(x.dtype, jnp.inexact)
  wide = x.dtype.itemsize == 8  # two words an element: its elements' flags would not line up with the words
  flags = jnp.isfinite(x).reshape(-1) if floats and not wide else jnp.ones(w.shape, jnp.bool_)
  # One reduction of the three: XLA:CPU fuses the terms and flags into it, one loop per array, where `jnp.sum`
  # and `jnp.all` become trees of reduce-windows over materialised terms (slower to compile and to run).
  zero = jnp.uint32(0)
  first, second, finite = jax.lax.reduce((*terms, flags), (zero, zero, jnp.bool_(True)), _add_and, (0,))
  return first, second, (finite & jnp.all(jnp.isfinite(x))) if floats and wide else finite


@jax.jit
def _scan_all(leaves):
  return [_leaf_scan(x) for x in leaves]


class Scan(NamedTuple):
  sums: dict[str, str]  # {array path: 16 hex digits}
  finite: bool  # no float array holds a NaN or an infinity


def scan(state) -> Scan:
  """The checksum of every array of `state` and whether all its floats are finite, in one pass."""
  paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(state)[0]) if jax.tree.leaves(state) else ((), ())
  results = jax.device_get(_scan_all(list(leaves)))
  sums = {jax.tree_util.keystr(p): f"{int(r[0]):08x}{int(r[1]):08x}" for p, r in zip(paths, results)}
  return Scan(sums, all(bool(r[2]) for r in results))


def of_state(state) -> dict[str, str]:
  """{array path: 16 hex digits} for every array of `state`."""
  return scan(state).sums


def mismatch(state, saved: dict[str, str]) -> str | None:
  """None when `state` matches the checksums saved with it; else which array differs."""
  now = of_state(state)
  if set(now) != set(saved):
    return f"its arrays are not the ones saved ({len(set(now) ^ set(saved))} paths differ)"
  bad = [p for p in now if now[p] != saved[p]]
  return f"checksum mismatch in {bad[0]}" + (f" and {len(bad) - 1} more arrays" if len(bad) > 1 else "") if bad else None
