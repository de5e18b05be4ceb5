"""Embeddings of scalars (diffusion time, noise level) for conditioning networks."""

import math

import jax.numpy as jnp
from flax import nnx


def sinusoidal_embedding(t, dim: int, max_period: float = 10_000.0):
  """Transformer-style sin/cos features of `t` (shape [B]) -> [B, dim].

  Frequencies are geometric from 1 down to 1/max_period, so integer timesteps in
  [0, 1000) and their neighbours get distinguishable codes.
  """
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


class TimeEmbedding(nnx.Module):
  """Sinusoidal features followed by a two-layer MLP (as in DDPM's U-Net)."""

  def __init__(self, features_in: int, features_out: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.features_in = features_in
    self.dense1 = nnx.Linear(features_in, features_out, dtype=dtype, rngs=rngs)
    self.dense2 = nnx.Linear(features_out, features_out, dtype=dtype, rngs=rngs)

  def __call__(self, t):
    h = sinusoidal_embedding(t, self.features_in)
    return self.dense2(nnx.silu(self.dense1(h)))
