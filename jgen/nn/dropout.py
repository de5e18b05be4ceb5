"""Dropout whose random bits are a hash of each element's index and the key, two elements to a 32-bit word.

jax's threefry (partitionable, the default) spends one 20-round threefry block on every element it draws, and
`nnx.Dropout` draws a float32 uniform per element: in the DDPM U-Net's step on the 2-core CPU the masks' bits
were the largest elementwise cost. A dropout mask needs bits that are uniform and independent across
elements and keys, not a cryptographic stream, so each 32-bit word here is MurmurHash3's finaliser applied
twice, over the element's index mixed with one word of the key, then with the other (every input bit flips
every output bit with probability ~1/2), and its two 16-bit halves decide two elements. Forward + backward on
[64, 28, 28, 64]: 8.98 -> 2.91 ms against threefry's bits (benchmarks/README.md, "Dropout bits").
tests/test_dropout.py checks the rate, each bit's frequency, and independence between the two halves,
neighbouring words and keys.

The drop probability is a multiple of 2**-16 (0.1 -> 6554 / 65536 = 0.100006), and the kept values are scaled
by the inverse of that exact keep probability, so the output's expectation is the input. The words are indexed
over the input's shape with the last axis halved, so the mask depends on the shape and the key only: the same
under any sharding of the array.
"""

import math

import jax
import jax.numpy as jnp

_LEVELS = 1 << 16


def _mix(h: jax.Array) -> jax.Array:
  """MurmurHash3's 32-bit finaliser (a bijection of uint32 with full avalanche)."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def random_words(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """uint32 words of `shape`, a hash of each element's row-major index and the key's words."""
  size = math.prod(shape)
  if size > 1 << 32:  # a uint32 index would repeat, and so would the mask
    raise ValueError(f"dropout over {size:,} words (more than 2**32): split the array")
  words = jax.random.key_data(key).astype(jnp.uint32).reshape(-1)
  index = jax.lax.iota(jnp.uint32, size).reshape(shape)
  h = index
  for word in words:  # two for threefry keys
    h = _mix(h ^ word)
  return h


def drop_threshold(rate: float) -> int:
  """Elements whose 16-bit draw is below this are dropped: round(rate * 2**16)."""
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
  return round(rate * _LEVELS)


def dropout(x: jax.Array, rate: float, key: jax.Array) -> jax.Array:
  """x with each element zeroed with probability ~`rate` (see drop_threshold) and the rest scaled up."""
  threshold = drop_threshold(rate)
  if threshold == 0 or x.size == 0:
    return x
  if threshold == _LEVELS:
    return jnp.zeros_like(x)
  last = x.shape[-1] if x.ndim else 1
  half = (last + 1) // 2
  words = random_words(key, x.shape[:-1] + (half,) if x.ndim else (1,))
  draws = jnp.concatenate([words & 0xFFFF, words >> 16], axis=-1)[..., :last].reshape(x.shape)
  keep = draws >= threshold
  scale = _LEVELS / (_LEVELS - threshold)  # in float32: a scale rounded to bf16 would shrink every kept value by 0.16 %
  return jnp.where(keep, (x.astype(jnp.float32) * scale).astype(x.dtype), jnp.zeros((), x.dtype))
