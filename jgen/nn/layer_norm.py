"""LayerNorm whose scale and bias gradients are matrix-vector products.

The same function and parameters as `nnx.LayerNorm` (statistics in float32, E[x^2] - E[x]^2 clipped at 0,
epsilon 1e-6 by default). The scale and bias gradients sum g * x_hat and g over every row; XLA:CPU emitted
those column sums as trees of reduce-windows (the transformer step's largest remaining reductions), so here
they are ones[rows] @ [rows, D] products accumulated in float32, as in jgen.nn.bias.
"""

import jax
import jax.numpy as jnp
from flax import nnx


@jax.custom_vjp
def scale_shift(x_hat, scale, bias):
  """x_hat [..., D] * scale [D] + bias [D]."""
  return x_hat * scale + bias


def _forward(x_hat, scale, bias):
  return x_hat * scale + bias, (x_hat, scale, jnp.zeros((0,), bias.dtype))


def _backward(residuals, g):
  x_hat, scale, bias_like = residuals
  rows = lambda a: a.reshape(-1, a.shape[-1])
  ones = jnp.ones((rows(g).shape[0],), g.dtype)
  column_sum = lambda a: jnp.dot(ones, rows(a), preferred_element_type=jnp.float32)
  return (g * scale, column_sum(g * x_hat).astype(scale.dtype), column_sum(g).astype(bias_like.dtype))


scale_shift.defvjp(_forward, _backward)


class LayerNorm(nnx.Module):
  """Normalises the last axis, then scales and shifts it. As in nnx.LayerNorm, `dtype` (default: the result
  type of the input and parameters) is what the input and parameters are cast to and the output's dtype; the
  statistics and the normalisation run in at least float32."""

  def __init__(self, num_features: int, *, epsilon: float = 1e-6, dtype=None, param_dtype=jnp.float32,
               rngs: nnx.Rngs | None = None):
    if rngs is not None:  # nnx.LayerNorm draws a key for each initialiser: later layers see the same streams
      rngs.params(), rngs.params()
    self.scale = nnx.Param(jnp.ones((num_features,), param_dtype))
    self.bias = nnx.Param(jnp.zeros((num_features,), param_dtype))
    self.epsilon, self.dtype = epsilon, dtype

  def __call__(self, x):
    scale, bias = self.scale[...], self.bias[...]
    dtype = self.dtype or jnp.result_type(x, scale, bias)
    stats_dtype = jnp.promote_types(dtype, jnp.float32)
    x, scale, bias = (a.astype(dtype).astype(stats_dtype) for a in (x, scale, bias))
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=-1, keepdims=True) - jnp.square(mean), 0.0)
    x_hat = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    return scale_shift(x_hat, scale, bias).astype(dtype)
