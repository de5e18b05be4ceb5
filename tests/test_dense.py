"""Dense is nnx.Linear: the same parameters from the same seed, the same values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn.dense import Dense


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 6), (2, 3, 6)])
def test_same_parameters_values_and_gradients_as_linear(use_bias, shape):
  ours, ref = Dense(6, 4, use_bias=use_bias, rngs=nnx.Rngs(3)), nnx.Linear(6, 4, use_bias=use_bias, rngs=nnx.Rngs(3))
  for a, b in zip(jax.tree.leaves(nnx.state(ours)), jax.tree.leaves(nnx.state(ref)), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  if use_bias:  # a zero bias would not show a wrong bias gradient's values
    for layer in (ours, ref):
      layer.bias[...] = jnp.arange(4.0)
  x = jax.random.normal(jax.random.key(0), shape)
  g = jax.random.normal(jax.random.key(1), shape[:-1] + (4,))

  def loss(layer, x):
    return jnp.sum(layer(x) * g)

  np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(ref(x)), rtol=1e-6, atol=1e-6)
  (g_ours, gx_ours), (g_ref, gx_ref) = (nnx.grad(loss, argnums=(0, 1))(m, x) for m in (ours, ref))
  np.testing.assert_allclose(np.asarray(gx_ours), np.asarray(gx_ref), rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_keeps_float32_parameters():
  layer = Dense(3, 2, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  y = layer(jnp.ones((4, 3)))
  assert y.dtype == jnp.bfloat16 and layer.kernel[...].dtype == jnp.float32
  grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((4, 3))).astype(jnp.float32)))(layer)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(grads))
