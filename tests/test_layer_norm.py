"""LayerNorm is nnx's: the same parameters and random streams, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn.layer_norm import LayerNorm
from jgen.nn.scale_shift import scale_shift

CASES = {  # name: (ours, nnx's, constructor kwargs, input shape)
    "layer": (LayerNorm, nnx.LayerNorm, {}, (2, 5, 16)),
    "layer_2d": (LayerNorm, nnx.LayerNorm, {}, (7, 16)),
    "layer_4d": (LayerNorm, nnx.LayerNorm, {}, (2, 3, 4, 16)),
}


def _pair(case, **extra):
  ours_cls, ref_cls, kw, shape = CASES[case]
  ours, ref = (cls(shape[-1], **kw, **extra, rngs=nnx.Rngs(3)) for cls in (ours_cls, ref_cls))
  for layer in (ours, ref):  # non-trivial parameters, so a wrong scale or bias gradient shows
    dim = shape[-1]
    layer.scale[...] = 1.0 + 0.1 * jnp.arange(dim, dtype=jnp.float32)
    layer.bias[...] = 0.5 - 0.2 * jnp.arange(dim, dtype=jnp.float32)
  return ours, ref, shape


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_values_and_gradients_as_nnx(case):
  ours, ref, shape = _pair(case)
  x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), shape)  # an offset mean, as in a residual stream
  g = jax.random.normal(jax.random.key(1), shape)

  def loss(layer, x):
    return jnp.sum(layer(x) * g)

  np.testing.assert_allclose(ours(x), ref(x), rtol=1e-5, atol=1e-5)
  (g_ours, gx_ours), (g_ref, gx_ref) = (nnx.grad(loss, argnums=(0, 1))(m, x) for m in (ours, ref))
  np.testing.assert_allclose(gx_ours, gx_ref, rtol=1e-4, atol=1e-4)
  assert jax.tree.structure(g_ours) == jax.tree.structure(g_ref)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["layer", "layer_4d"])
def test_parameters_and_the_streams_after_them_match(case):
  ours_cls, ref_cls, kw, shape = CASES[case]
  r1, r2 = nnx.Rngs(5), nnx.Rngs(5)
  ours, ref = ours_cls(shape[-1], **kw, rngs=r1), ref_cls(shape[-1], **kw, rngs=r2)
  assert set(nnx.state(ours).keys()) == set(nnx.state(ref).keys()) == {"scale", "bias"}
  for a, b in zip(jax.tree.leaves(nnx.state(ours)), jax.tree.leaves(nnx.state(ref)), strict=True):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(jax.random.key_data(r1.params()), jax.random.key_data(r2.params()))


def test_scale_shift_gradients_are_the_column_sums():
  x_hat = jax.random.normal(jax.random.key(2), (4, 3, 5))
  scale, bias = jnp.linspace(0.5, 1.5, 5), jnp.linspace(-1.0, 1.0, 5)
  g = jax.random.normal(jax.random.key(3), (4, 3, 5))
  np.testing.assert_allclose(scale_shift(x_hat, scale, bias), x_hat * scale + bias, rtol=1e-7)
  _, vjp = jax.vjp(scale_shift, x_hat, scale, bias)
  gx, gs, gb = vjp(g)
  np.testing.assert_allclose(gx, g * scale, rtol=1e-6)
  np.testing.assert_allclose(gs, np.sum(np.asarray(g) * np.asarray(x_hat), axis=(0, 1)), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(gb, np.sum(np.asarray(g), axis=(0, 1)), rtol=1e-5, atol=1e-5)


def test_scale_shift_accumulates_bfloat16_gradients_in_float32():
  g = jnp.full((4096, 2), 1.0 / 64, jnp.bfloat16)  # a bf16 running sum would stall near 4 (bf16 has 8 bits)
  x_hat = jnp.ones((4096, 2), jnp.bfloat16)
  _, vjp = jax.vjp(scale_shift, x_hat, jnp.ones((2,), jnp.bfloat16), jnp.zeros((2,), jnp.bfloat16))
  _, gs, gb = vjp(g)
  np.testing.assert_array_equal(np.asarray(gs, np.float32), [64.0, 64.0])
  np.testing.assert_array_equal(np.asarray(gb, np.float32), [64.0, 64.0])


@pytest.mark.parametrize("case", ["layer", "layer_4d"])
def test_bfloat16_compute_matches_and_keeps_float32_parameters(case):
  ours, ref, shape = _pair(case, dtype=jnp.bfloat16)
  x = jax.random.normal(jax.random.key(4), shape).astype(jnp.bfloat16)
  y = ours(x)
  assert y.dtype == jnp.bfloat16 and ours.scale[...].dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(ref(x), np.float32), rtol=1e-2, atol=1e-2)
  grads = nnx.grad(lambda m: jnp.sum(m(x).astype(jnp.float32)))(ours)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(grads))
