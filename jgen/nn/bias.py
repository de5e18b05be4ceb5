"""A bias added over the last axis, whose gradient is a matrix-vector product.

The bias gradient sums the incoming gradient over every other axis. XLA:CPU emits that sum over the rows of
[N, C] as a column reduction fused with the gradient's producer, which ran slowly: the PixelCNN's 256-way
output layer spent ~45 ms of a ~240 ms step on its bias gradient. Here the gradient is
ones[N] @ g[N, C], a dot XLA hands to its matmul library, accumulated in float32.
"""

import jax
import jax.numpy as jnp


@jax.custom_vjp
def add_bias(y, bias):
  """y [..., C] + bias [C]."""
  return y + bias


def _forward(y, bias):
  return y + bias, jnp.zeros((0,), bias.dtype)  # the residual only carries the bias dtype


def _backward(residual, g):
  rows = g.reshape(-1, g.shape[-1])
  ones = jnp.ones((rows.shape[0],), rows.dtype)
  return g, jnp.dot(ones, rows, preferred_element_type=jnp.float32).astype(residual.dtype)


add_bias.defvjp(_forward, _backward)
