"""Drawing the next token from logits: temperature, then top-k, then top-p (nucleus) truncation."""

import jax
import jax.numpy as jnp


def truncate(logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
  """Logits [..., V] -> the logits actually sampled from; removed tokens get -inf.

  top_k = 0 and top_p = 1 switch truncation off; the most likely token always survives.
  """
  logits = logits.astype(jnp.float32) / temperature
  if 0 < top_k < logits.shape[-1]:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p < 1.0:
    ordered = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(ordered, axis=-1)
    # Keep a token while the mass of the tokens strictly more likely than it is below top_p.
    before = jnp.cumsum(probs, axis=-1) - probs
    cutoff = jnp.min(jnp.where(before < top_p, ordered, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return logits


def draw(rng, logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
  """One token id per row of `logits` [n, V] (int32 [n])."""
  return jax.random.categorical(rng, truncate(logits, temperature, top_k, top_p), axis=-1).astype(jnp.int32)
