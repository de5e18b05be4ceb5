"""Dropout from half the random bits: each 32-bit threefry word decides two elements with its two 16-bit halves.

jax's threefry (partitionable, the default) spends one threefry block on every element it draws, whatever the
dtype, and `nnx.Dropout` draws a float32 uniform per element: in the DDPM U-Net's step the dropout masks'
random bits took ~60 ms of ~1.2 s on the 2-core CPU. Deciding each element with 16 bits halves that work. The
drop probability becomes a multiple of 2**-16 (0.1 -> 6554 / 65536 = 0.100006), and the kept values are
scaled by the inverse of that exact keep probability, so the output's expectation is the input.

The words are drawn over the input's shape with the last axis halved, so the mask depends on the shape and the
key only: the same under any sharding of the leading axes.
"""

import jax
import jax.numpy as jnp

_LEVELS = 1 << 16


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
  words = jax.random.bits(key, x.shape[:-1] + (half,) if x.ndim else (1,), jnp.uint32)
  draws = jnp.concatenate([words & 0xFFFF, words >> 16], axis=-1)[..., :last].reshape(x.shape)
  keep = draws >= threshold
  scale = _LEVELS / (_LEVELS - threshold)  # in float32: a scale rounded to bf16 would shrink every kept value by 0.16 %
  return jnp.where(keep, (x.astype(jnp.float32) * scale).astype(x.dtype), jnp.zeros((), x.dtype))
