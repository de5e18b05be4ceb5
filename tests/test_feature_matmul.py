"""feature_matmul is jnp.matmul, with gradients equal to matmul's and a float32-accumulated kernel gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.nn.feature_matmul import feature_matmul
from tests.helpers import vjp_both


@pytest.mark.parametrize("k,n", [(5, 6), (6, 5)])  # either operand is the narrower one
def test_feature_matmul_gradients_are_matmul_gradients(k, n):
  x = jax.random.normal(jax.random.key(0), (2, 3, 4, k))
  kernel = jax.random.normal(jax.random.key(1), (k, n))
  g = jax.random.normal(jax.random.key(2), (2, 3, 4, n))
  ours, ref = vjp_both(feature_matmul, jnp.matmul, x, kernel, g)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
  grad = jax.jit(jax.vmap(jax.grad(lambda x, k: jnp.sum(feature_matmul(x, k) ** 2), argnums=1), (0, None)))
  expected = jax.vmap(jax.grad(lambda x, k: jnp.sum(jnp.matmul(x, k) ** 2), argnums=1), (0, None))(x, kernel)
  np.testing.assert_allclose(np.asarray(grad(x, kernel)), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_bfloat16_kernel_gradient_accumulates_in_float32():
  """4,096 rows of 1/64 sum to 64 exactly in float32; a bfloat16 running sum would stall far below."""
  x = jnp.ones((4096, 1), jnp.bfloat16)
  kernel = jnp.zeros((1, 2), jnp.bfloat16)
  grad = jax.grad(lambda k: jnp.sum(feature_matmul(x, k).astype(jnp.float32) / 64.0))(kernel)
  assert grad.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(grad, np.float32), [[64.0, 64.0]])
