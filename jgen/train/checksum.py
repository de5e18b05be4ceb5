"""A checksum of every array of a train state, computed on the device.

Saved with each checkpoint and compared after restore, so silently flipped bits
in a checkpoint's files are caught instead of restored. Each array's words are
summed with odd position weights in wrapping uint32 arithmetic: any single-bit
change moves the sum (2^b times an odd number is never 0 mod 2^32), two
independent weightings make a chance collision ~2^-64, and integer addition is
associative, so the value does not depend on the sharding or the device count.
"""

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


def _leaf_sums(x: jax.Array) -> jax.Array:
  w = _words(jnp.asarray(x)).reshape(-1)
  pos = jnp.arange(w.size, dtype=jnp.uint32)
  odd = 2 * pos + 1
  first = jnp.sum(w * odd * _K1, dtype=jnp.uint32)
  second = jnp.sum((w ^ (w >> 15)) * (odd * _K2 + pos * 2), dtype=jnp.uint32)
  return jnp.stack([first, second])


@jax.jit
def _all_sums(leaves):
  return [_leaf_sums(x) for x in leaves]


def of_state(state) -> dict[str, str]:
  """{array path: 16 hex digits} for every array of `state`."""
  paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(state)[0]) if jax.tree.leaves(state) else ((), ())
  sums = jax.device_get(_all_sums(list(leaves)))
  return {jax.tree_util.keystr(p): f"{int(s[0]):08x}{int(s[1]):08x}" for p, s in zip(paths, sums)}


def mismatch(state, saved: dict[str, str]) -> str | None:
  """None when `state` matches the checksums saved with it; else which array differs."""
  now = of_state(state)
  if set(now) != set(saved):
    return f"its arrays are not the ones saved ({len(set(now) ^ set(saved))} paths differ)"
  bad = [p for p in now if now[p] != saved[p]]
  return f"checksum mismatch in {bad[0]}" + (f" and {len(bad) - 1} more arrays" if len(bad) > 1 else "") if bad else None
