"""seq.transformer: a causal decoder-only transformer (pre-norm, rotary positions, multi-head attention).

model: embed_dim, num_heads, num_layers, mlp_ratio, tie_embeddings (the head reuses the token
embedding); sampling: temperature, top_k, top_p, sample_length.
Training attends with a causal mask over the window (jgen.nn.scaled_dot_product).
Sampling keeps a KV cache [n, length, heads, head_dim] per layer, built inside
`sample`: each step writes the new token's key and value at its position and
attends over the cache, masked to the positions written so far. Rotary positions
need no table, so sampling may run past the training window (the model has not
seen such distances, so quality falls there). In bfloat16 (`model.dtype`) every
matmul, the residual stream and the KV cache are bfloat16; LayerNorm statistics,
rotary angles and the attention softmax are float32.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.families.sequence.family import SequenceFamily
from jgen.nn.dense import Dense
from jgen.nn.rotary import rotary
from jgen.nn.scaled_dot_product import attend
from jgen.registry import register


class Block(nnx.Module):

  def __init__(self, dim, heads, mlp_ratio, *, dtype=jnp.float32, rngs):
    self.heads = heads
    kw = dict(dtype=dtype, rngs=rngs)
    self.norm1 = nnx.LayerNorm(dim, **kw)
    self.qkv = Dense(dim, 3 * dim, use_bias=False, **kw)
    self.proj = Dense(dim, dim, **kw)
    self.norm2 = nnx.LayerNorm(dim, **kw)
    self.fc1 = Dense(dim, mlp_ratio * dim, **kw)
    self.fc2 = Dense(mlp_ratio * dim, dim, **kw)

  def _qkv(self, h, positions):
    b, t, d = h.shape
    q, k, v = jnp.split(self.qkv(self.norm1(h)).reshape(b, t, 3 * self.heads, d // self.heads), 3, axis=2)
    return rotary(q, positions), rotary(k, positions), v

  def _finish(self, h, attended):
    h = h + self.proj(attended.reshape(h.shape))
    return h + self.fc2(jax.nn.gelu(self.fc1(self.norm2(h))))

  def __call__(self, h):
    q, k, v = self._qkv(h, jnp.arange(h.shape[1]))
    return self._finish(h, attend(q, k, v, causal=True))

  def step(self, h, cache, t):
    """h [n, 1, d] at position t; cache (keys, values) [n, S, H, d/H] -> (h, cache)."""
    q, k, v = self._qkv(h, t[None])
    keys = jax.lax.dynamic_update_slice_in_dim(cache[0], k, t, axis=1)
    values = jax.lax.dynamic_update_slice_in_dim(cache[1], v, t, axis=1)
    written = (jnp.arange(keys.shape[1]) <= t)[None, None, None, :]  # [1, 1, 1, S]
    return self._finish(h, attend(q, keys, values, mask=written)), (keys, values)


class TransformerNet(nnx.Module):

  def __init__(self, vocab_size, dim, heads, num_layers, mlp_ratio, tie_embeddings, *, dtype=jnp.float32, rngs):
    self.vocab_size = vocab_size
    kw = dict(dtype=dtype, rngs=rngs)
    self.embed = nnx.Embed(vocab_size + 1, dim, embedding_init=nnx.initializers.normal(0.02), **kw)
    self.blocks = nnx.List([Block(dim, heads, mlp_ratio, **kw) for _ in range(num_layers)])
    self.norm = nnx.LayerNorm(dim, **kw)
    self.head = None if tie_embeddings else Dense(dim, vocab_size, **kw)

  def _logits(self, h):
    h = self.norm(h)
    if self.head is not None:
      return self.head(h)
    # The begin-of-sequence row is input-only; the float32 table is cast to the compute dtype like a layer's.
    return h @ self.embed.embedding[...][:self.vocab_size].T.astype(h.dtype)

  def __call__(self, tokens):
    h = self.embed(tokens)
    for block in self.blocks:
      h = block(h)
    return self._logits(h)

  def step(self, cache, token, t):
    """token [n] at position t -> (logits [n, V], cache), one (keys, values) per block."""
    h, new = self.embed(token)[:, None], []
    for block, layer_cache in zip(self.blocks, cache):
      h, layer_cache = block.step(h, layer_cache, t)
      new.append(layer_cache)
    return self._logits(h)[:, 0], tuple(new)


@register("seq.transformer", family="autoregressive")
class SeqTransformer(SequenceFamily):
  """A character-level causal transformer language model."""

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(embed_dim=128, num_heads=4, num_layers=4, mlp_ratio=4, tie_embeddings=True)
    return d

  @classmethod
  def check_model(cls, model):
    super().check_model(model)
    if model.embed_dim % model.num_heads or (model.embed_dim // model.num_heads) % 2:
      raise ValueError(f"model.embed_dim={model.embed_dim}: must split into model.num_heads={model.num_heads} "
                       f"heads of an even size (rotary positions rotate pairs)")

  def make_networks(self, rngs):
    m = self.config.model
    return {"model": TransformerNet(self.vocab_size, m.embed_dim, m.num_heads, m.num_layers, m.mlp_ratio,
                                    m.tie_embeddings, dtype=self.compute_dtype, rngs=rngs)}

  def start(self, model, n, length):
    m = self.config.model
    zeros = jnp.zeros((n, length, m.num_heads, m.embed_dim // m.num_heads), self.compute_dtype)
    return tuple((zeros, zeros) for _ in range(m.num_layers))

  def step(self, model, carry, token, t):
    return model.step(carry, token, t)
