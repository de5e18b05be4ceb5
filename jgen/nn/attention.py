"""Self-attention over the pixels of a feature map, as a residual block; `dtype` is the compute dtype
(jgen.nn.precision), parameters stay float32."""

import math

import jax.numpy as jnp
from flax import nnx

from jgen.nn.dense import Dense
from jgen.nn.scaled_dot_product import attend


def group_count(channels: int, max_groups: int = 32) -> int:
  """The largest group count <= max_groups that divides `channels` (GroupNorm needs a divisor)."""
  return math.gcd(channels, max_groups)


class SelfAttention2d(nnx.Module):
  """x + proj(attention(norm(x))) over all H*W positions; the projection starts at zero
  so that a freshly built block is the identity."""

  def __init__(self, channels: int, *, num_heads: int = 1, dtype=jnp.float32, rngs: nnx.Rngs):
    if channels % num_heads:
      raise ValueError(f"{channels} channels do not split into {num_heads} heads")
    self.num_heads = num_heads
    self.norm = nnx.GroupNorm(channels, num_groups=group_count(channels), dtype=dtype, rngs=rngs)
    self.qkv = Dense(channels, 3 * channels, dtype=dtype, rngs=rngs)
    self.proj = Dense(channels, channels, dtype=dtype, kernel_init=nnx.initializers.zeros, rngs=rngs)

  def __call__(self, x):
    b, h, w, c = x.shape
    qkv = self.qkv(self.norm(x)).reshape(b, h * w, 3, self.num_heads, c // self.num_heads)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    # In bfloat16 the two matmuls take bfloat16 operands; the logits and the softmax are float32.
    out = attend(q, k, v)
    out = self.proj(out.reshape(b, h, w, c))
    return x + out
