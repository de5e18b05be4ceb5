"""Conv is nnx.Conv: the same parameters under the same names from the same seed, the same values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn.conv import Conv

CASES = {  # name -> (nnx.Conv arguments after in/out features, input shape)
    "3x3 same": (dict(kernel_size=(3, 3)), (2, 8, 8, 3)),
    "4x4 stride 2": (dict(kernel_size=(4, 4), strides=2, padding="SAME"), (2, 8, 8, 3)),
    "1x1": (dict(kernel_size=(1, 1)), (2, 5, 5, 3)),
    "valid, two batch axes": (dict(kernel_size=(2, 3), padding="VALID"), (2, 2, 6, 7, 3)),
    "masked": (dict(kernel_size=(3, 3), mask=np.tril(np.ones((3, 3)))[:, :, None, None] * np.ones((1, 1, 3, 4))),
               (2, 6, 6, 3)),
    "zero init": (dict(kernel_size=(3, 3), kernel_init=nnx.initializers.zeros, bias_init=nnx.initializers.ones),
                  (2, 6, 6, 3)),
}


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_same_parameters_values_and_gradients_as_nnx_conv(case, use_bias):
  kwargs, shape = CASES[case]
  ours, ref = (cls(3, 4, use_bias=use_bias, rngs=nnx.Rngs(3), **kwargs) for cls in (Conv, nnx.Conv))
  ours_state, ref_state = nnx.state(ours, nnx.Param), nnx.state(ref, nnx.Param)
  assert jax.tree.structure(ours_state) == jax.tree.structure(ref_state)  # names, so checkpoints carry over
  for a, b in zip(jax.tree.leaves(ours_state), jax.tree.leaves(ref_state), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  if use_bias:  # a zero bias would not show a wrong bias gradient's values
    for layer in (ours, ref):
      layer.bias[...] = jnp.arange(4.0)
  x = jax.random.normal(jax.random.key(0), shape)
  y = ref(x)
  g = jax.random.normal(jax.random.key(1), y.shape)

  def loss(layer, x):
    return jnp.sum(layer(x) * g)

  np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(y), rtol=1e-6, atol=1e-6)
  (g_ours, gx_ours), (g_ref, gx_ref) = (nnx.grad(loss, argnums=(0, 1))(m, x) for m in (ours, ref))
  np.testing.assert_allclose(np.asarray(gx_ours), np.asarray(gx_ref), rtol=1e-5, atol=1e-5)
  assert jax.tree.structure(g_ours) == jax.tree.structure(g_ref)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_bias_gradient_is_the_sum_over_batch_and_positions():
  layer = Conv(2, 3, (3, 3), rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(0), (4, 5, 5, 2))
  g = jax.random.normal(jax.random.key(1), (4, 5, 5, 3))
  grads = nnx.grad(lambda m: jnp.sum(m(x) * g))(layer)
  np.testing.assert_allclose(np.asarray(grads.bias[...]), np.asarray(g.sum((0, 1, 2))), rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_keeps_float32_parameters():
  layer = Conv(3, 2, (3, 3), dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  x = jnp.ones((2, 4, 4, 3))
  y = layer(x)
  ref = nnx.Conv(3, 2, (3, 3), dtype=jnp.bfloat16, rngs=nnx.Rngs(0))(x)
  assert y.dtype == jnp.bfloat16 and layer.kernel[...].dtype == jnp.float32 and layer.bias[...].dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(ref, np.float32))
  grads = nnx.grad(lambda m: jnp.sum(m(x).astype(jnp.float32)))(layer)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(grads))


def test_draws_as_many_keys_as_nnx_conv():
  """The layers built after it get the same random parameters as after an nnx.Conv."""
  ours_rngs, ref_rngs = nnx.Rngs(5), nnx.Rngs(5)
  Conv(3, 4, (3, 3), rngs=ours_rngs), nnx.Conv(3, 4, (3, 3), rngs=ref_rngs)
  after_ours, after_ref = (nnx.Conv(4, 4, (3, 3), rngs=r).kernel[...] for r in (ours_rngs, ref_rngs))
  np.testing.assert_array_equal(np.asarray(after_ours), np.asarray(after_ref))


def test_bias_metadata_reaches_the_bias_as_in_nnx_conv():
  ours = Conv(2, 3, (3, 3), bias_metadata={"tag": "b"}, rngs=nnx.Rngs(0))
  ref = nnx.Conv(2, 3, (3, 3), bias_metadata={"tag": "b"}, rngs=nnx.Rngs(0))
  assert ours.bias.get_metadata() == ref.bias.get_metadata() and ours.bias.get_metadata()["tag"] == "b"
