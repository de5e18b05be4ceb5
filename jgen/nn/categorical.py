"""log softmax(logits)[label] with a one-pass gradient.

`categorical_log_prob(logits, labels)` is `take_along_axis(log_softmax(logits), labels)`, the log-likelihood of
a categorical output (the PixelCNN's 256 levels, a language model's tokens). Its gradient with respect to the
logits is g * (onehot(label) - softmax(logits)), written here as one elementwise expression of the saved logits
and log-normaliser. Differentiating the composition instead scatters g into a zero array and runs
log_softmax's backward pass over it: on XLA:CPU that took ~25 ms of the PixelCNN `cpu` step's ~195 ms, and
the one-pass form makes the step 18-27 % faster (benchmarks/README.md).
"""

import jax
import jax.numpy as jnp


@jax.custom_vjp
def categorical_log_prob(logits, labels):
  """logits [..., K], labels int [...] in [0, K) -> log p(labels) [...]."""
  return _forward(logits, labels)[0]


def _forward(logits, labels):
  log_normaliser = jax.nn.logsumexp(logits, axis=-1)
  picked = jnp.take_along_axis(logits, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return picked - log_normaliser, (logits, log_normaliser, labels)


def _backward(saved, g):
  logits, log_normaliser, labels = saved
  hit = jnp.arange(logits.shape[-1]) == labels[..., None]
  softmax = jnp.exp(logits - log_normaliser[..., None])
  return g[..., None] * (hit.astype(logits.dtype) - softmax), None


categorical_log_prob.defvjp(_forward, _backward)
