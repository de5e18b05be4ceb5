"""add_bias is y + bias, with the bias gradient summed over every row (float32 accumulation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.nn.bias import add_bias


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 4, 7)])
def test_value_and_gradients_match_plain_addition(shape):
  y = jax.random.normal(jax.random.key(0), shape)
  bias = jax.random.normal(jax.random.key(1), shape[-1:])
  g = jax.random.normal(jax.random.key(2), shape)
  np.testing.assert_array_equal(np.asarray(add_bias(y, bias)), np.asarray(y + bias))
  ours = jax.grad(lambda y, b: jnp.sum(add_bias(y, b) * g), argnums=(0, 1))(y, bias)
  ref = jax.grad(lambda y, b: jnp.sum((y + b) * g), argnums=(0, 1))(y, bias)
  np.testing.assert_array_equal(np.asarray(ours[0]), np.asarray(ref[0]))
  np.testing.assert_allclose(np.asarray(ours[1]), np.asarray(ref[1]), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(ours[1]), np.asarray(g).reshape(-1, shape[-1]).sum(0), rtol=1e-5, atol=1e-5)


def test_bfloat16_gradient_accumulates_in_float32():
  """4,096 rows of 1/64 sum to 64 exactly in float32; a bfloat16 running sum would stall at 4 or so."""
  y = jnp.zeros((4096, 2), jnp.bfloat16)
  bias = jnp.zeros((2,), jnp.bfloat16)
  grad = jax.grad(lambda b: jnp.sum(add_bias(y, b).astype(jnp.float32) / 64.0))(bias)
  assert grad.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(grad, np.float32), [64.0, 64.0])


def test_under_jit_and_vmap():
  y = jax.random.normal(jax.random.key(0), (3, 4, 2))
  bias = jnp.arange(2.0)
  f = jax.jit(jax.vmap(jax.grad(lambda y, b: jnp.sum(add_bias(y, b) ** 2), argnums=1), in_axes=(0, None)))
  np.testing.assert_allclose(np.asarray(f(y, bias)), np.asarray(2 * (y + bias).sum(1)), rtol=1e-5)


def test_forward_mode_and_an_undifferentiated_bias():
  y = jax.random.normal(jax.random.key(0), (3, 4))
  bias = jnp.arange(4.0)
  np.testing.assert_allclose(np.asarray(jax.jacfwd(add_bias, argnums=1)(y, bias)),
                             np.broadcast_to(np.eye(4), (3, 4, 4)), atol=0)
  np.testing.assert_allclose(np.asarray(jax.jacfwd(add_bias)(y, bias)),
                             np.asarray(jax.jacfwd(lambda y: y + bias)(y)), atol=0)
  # A gradient for the input alone: the bias's tangent is a symbolic zero, and no product over rows is made.
  jaxpr = jax.make_jaxpr(jax.grad(lambda y: jnp.sum(add_bias(y, bias) ** 2)))(y)
  assert "dot_general" not in str(jaxpr)
  np.testing.assert_allclose(np.asarray(jax.grad(lambda y: jnp.sum(add_bias(y, bias) ** 2))(y)),
                             np.asarray(2 * (y + bias)), rtol=1e-6)
