"""LayerNorm is nnx.LayerNorm: the same parameters and random streams, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn.layer_norm import LayerNorm, scale_shift


def _pair(dim, **kw):
  ours, ref = LayerNorm(dim, rngs=nnx.Rngs(3), **kw), nnx.LayerNorm(dim, rngs=nnx.Rngs(3), **kw)
  # Non-trivial parameters, so a wrong scale or bias gradient shows.
  for layer in (ours, ref):
    layer.scale[...] = 1.0 + 0.1 * jnp.arange(dim, dtype=layer.scale[...].dtype)
    layer.bias[...] = 0.5 - 0.2 * jnp.arange(dim, dtype=layer.bias[...].dtype)
  return ours, ref


@pytest.mark.parametrize("shape", [(7, 16), (2, 5, 16)])
def test_same_values_and_gradients_as_nnx_layer_norm(shape):
  ours, ref = _pair(shape[-1])
  x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), shape)  # an offset mean, as in a residual stream
  g = jax.random.normal(jax.random.key(1), shape)

  def loss(layer, x):
    return jnp.sum(layer(x) * g)

  np.testing.assert_allclose(ours(x), ref(x), rtol=1e-6, atol=1e-6)
  (g_ours, gx_ours), (g_ref, gx_ref) = (nnx.grad(loss, argnums=(0, 1))(m, x) for m in (ours, ref))
  np.testing.assert_allclose(gx_ours, gx_ref, rtol=1e-5, atol=1e-5)
  assert jax.tree.structure(g_ours) == jax.tree.structure(g_ref)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_scale_shift_gradients_are_the_column_sums():
  x_hat = jax.random.normal(jax.random.key(2), (4, 3, 5), jnp.float64 if jax.config.x64_enabled else jnp.float32)
  scale, bias = jnp.linspace(0.5, 1.5, 5), jnp.linspace(-1.0, 1.0, 5)
  g = jax.random.normal(jax.random.key(3), (4, 3, 5))
  _, vjp = jax.vjp(scale_shift, x_hat, scale, bias)
  gx, gs, gb = vjp(g)
  np.testing.assert_allclose(gx, g * scale, rtol=1e-6)
  np.testing.assert_allclose(gs, np.sum(np.asarray(g) * np.asarray(x_hat), axis=(0, 1)), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(gb, np.sum(np.asarray(g), axis=(0, 1)), rtol=1e-5, atol=1e-5)


def test_parameters_and_the_streams_after_them_match():
  ours, ref = LayerNorm(6, rngs=nnx.Rngs(5)), nnx.LayerNorm(6, rngs=nnx.Rngs(5))
  assert set(nnx.state(ours).keys()) == set(nnx.state(ref).keys()) == {"scale", "bias"}
  for a, b in zip(jax.tree.leaves(nnx.state(ours)), jax.tree.leaves(nnx.state(ref)), strict=True):
    np.testing.assert_array_equal(a, b)
  r1, r2 = nnx.Rngs(5), nnx.Rngs(5)
  LayerNorm(6, rngs=r1), nnx.LayerNorm(6, rngs=r2)
  np.testing.assert_array_equal(jax.random.key_data(r1.params()), jax.random.key_data(r2.params()))


def test_bfloat16_compute_matches_and_keeps_float32_parameters():
  ours, ref = _pair(16, dtype=jnp.bfloat16)
  x = jax.random.normal(jax.random.key(4), (8, 16)).astype(jnp.bfloat16)
  y = ours(x)
  assert y.dtype == jnp.bfloat16 and ours.scale[...].dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(ref(x), np.float32), rtol=1e-2, atol=1e-2)
  grads = nnx.grad(lambda m: jnp.sum(m(x).astype(jnp.float32)))(ours)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(grads))
