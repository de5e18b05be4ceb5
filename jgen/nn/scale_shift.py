"""x_hat * scale + bias over the last axis, whose scale and bias gradients are matrix-vector products.

The two parameter gradients sum g * x_hat and g over every row. XLA:CPU emitted such column sums as trees of
reduce-windows fused with their producers (in the transformer step, the largest reductions left after
jgen.nn.bias); here they are ones[rows] @ [rows, D] products accumulated in float32, as in jgen.nn.bias.
jgen.nn.layer_norm ends with it. A GroupNorm ending with it was no faster at the U-Net's shapes
(benchmarks/README.md), so the U-Net keeps flax's.
"""

import jax
import jax.numpy as jnp


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
  return g * scale, column_sum(g * x_hat).astype(scale.dtype), column_sum(g).astype(bias_like.dtype)


scale_shift.defvjp(_forward, _backward)
