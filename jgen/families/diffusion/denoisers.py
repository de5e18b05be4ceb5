"""A small denoiser for low-dimensional data (2-D toy distributions): an MLP on [x, time, class]."""

import jax.numpy as jnp
from flax import nnx

from jgen.nn.embeddings import TimeEmbedding


class MLPDenoiser(nnx.Module):
  """out = MLP(x + embedding stream); same call signature as `jgen.nn.unet.UNet`.

  The time (and class) embedding is added to every hidden layer, so conditioning
  reaches the output directly rather than only through the first layer.
  """

  def __init__(self, dim: int, *, hidden: int = 256, depth: int = 3, num_classes: int = 0,
               dtype=jnp.float32, rngs: nnx.Rngs):
    self.dtype = dtype
    self.num_classes = num_classes
    self.time_embed = TimeEmbedding(hidden, hidden, dtype=dtype, rngs=rngs)
    self.class_embed = nnx.Embed(num_classes + 1, hidden, rngs=rngs) if num_classes else None
    self.inp = nnx.Linear(dim, hidden, dtype=dtype, rngs=rngs)
    self.hidden = nnx.List([nnx.Linear(hidden, hidden, dtype=dtype, rngs=rngs) for _ in range(depth)])
    self.cond = nnx.List([nnx.Linear(hidden, hidden, dtype=dtype, rngs=rngs) for _ in range(depth)])
    self.out = nnx.Linear(hidden, dim, dtype=dtype, kernel_init=nnx.initializers.zeros, rngs=rngs)

  def __call__(self, x, t, label=None, *, rngs: nnx.Rngs | None = None):
    emb = self.time_embed(t)
    if self.class_embed is not None:
      if label is None:
        label = jnp.full((x.shape[0],), self.num_classes, jnp.int32)
      emb = emb + self.class_embed(label)
    emb = nnx.silu(emb).astype(self.dtype)
    h = self.inp(x.astype(self.dtype))
    for layer, cond in zip(self.hidden, self.cond):
      h = layer(nnx.silu(h + cond(emb)))
    return self.out(nnx.silu(h)).astype(jnp.float32)
