"""SubpixelConvTranspose is nnx.ConvTranspose(4x4, stride 2, SAME): same parameters, outputs and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn import upsample
from jgen.nn.upsample import SubpixelConvTranspose, subpixel_conv_transpose


def _pair(cin, cout, use_bias, seed=0):
  sub = SubpixelConvTranspose(cin, cout, use_bias=use_bias, rngs=nnx.Rngs(seed))
  ref = nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding="SAME", use_bias=use_bias,
                          rngs=nnx.Rngs(seed + 1))
  if use_bias:  # a nonzero bias, so its gradient path is exercised with a nonzero value
    sub.bias[...] = jax.random.normal(jax.random.key(seed + 2), (cout,))
  nnx.update(ref, nnx.state(sub, nnx.Param))  # the same weights in both
  return sub, ref


def _grads(model, x, g):
  loss = lambda m, x: jnp.sum(m(x) * g)
  return nnx.jit(nnx.grad(loss, argnums=(0, 1)))(model, x)  # one compile, not one per eager op


def _close(a, b):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_bias", [True, False])
def test_same_parameters_and_init_as_conv_transpose(use_bias):
  sub = SubpixelConvTranspose(6, 3, use_bias=use_bias, rngs=nnx.Rngs(7))
  ref = nnx.ConvTranspose(6, 3, (4, 4), strides=(2, 2), padding="SAME", use_bias=use_bias, rngs=nnx.Rngs(7))
  ps, pr = nnx.state(sub, nnx.Param), nnx.state(ref, nnx.Param)
  assert jax.tree.structure(ps) == jax.tree.structure(pr)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), ps, pr)
  assert sub.kernel.shape == (4, 4, 6, 3)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 7, 7, 6, 4), (2, 4, 6, 3, 5), (2, 14, 14, 8, 1), (2, 1, 1, 2, 3),
                                   (1, 5, 3, 4, 8)])
def test_outputs_and_gradients_match_conv_transpose(shape, use_bias, fused, monkeypatch):
  b, h, w, cin, cout = shape
  # Force one lowering for every channel count, so both are checked at every shape.
  monkeypatch.setattr(upsample, "FUSED_BELOW", 10 ** 9 if fused else 0)
  sub, ref = _pair(cin, cout, use_bias)
  x = jax.random.normal(jax.random.key(3), (b, h, w, cin))
  g = jax.random.normal(jax.random.key(4), (b, 2 * h, 2 * w, cout))
  _close(nnx.jit(lambda m, x: m(x))(sub, x), ref(x))
  (gs, gxs), (gr, gxr) = _grads(sub, x, g), _grads(ref, x, g)
  _close(gxs, gxr)
  _close(gs["kernel"][...], gr["kernel"][...])
  if use_bias:
    _close(gs["bias"][...], gr["bias"][...])


@pytest.mark.parametrize("fused", [False, True])
def test_phase_mapping(fused):
  """One kernel tap (i, j) carries input pixel (m, n) to output pixel (2m + 2 - i, 2n + 2 - j) and nowhere else.

  Swapping two phases or two taps of a phase moves that pixel, so this fails for any wrong mapping.
  """
  x = jnp.zeros((1, 5, 6, 1)).at[0, 2, 3, 0].set(3.0)
  for i in range(4):
    for j in range(4):
      kernel = jnp.zeros((4, 4, 1, 1)).at[i, j, 0, 0].set(2.0)
      y = np.asarray(subpixel_conv_transpose(x, kernel, fused=fused))[0, :, :, 0]
      expected = np.zeros((10, 12))
      expected[2 * 2 + 2 - i, 2 * 3 + 2 - j] = 6.0
      np.testing.assert_array_equal(y, expected)


def test_batch_dims_and_jit():
  sub, ref = _pair(3, 2, True)
  x = jax.random.normal(jax.random.key(5), (2, 3, 4, 4, 3))  # two leading batch dims
  _close(nnx.jit(lambda m, x: m(x))(sub, x), ref(x))
  _close(sub(x[0, 0]), ref(x[0, 0]))  # no batch dim


def test_compute_dtype():
  sub = SubpixelConvTranspose(4, 3, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  ref = SubpixelConvTranspose(4, 3, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(6), (2, 7, 7, 4))
  y = sub(x)
  assert y.dtype == jnp.bfloat16 and sub.kernel.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(ref(x)), atol=0.1, rtol=0.05)


def test_rejects_other_kernel_sizes():
  with pytest.raises(ValueError, match="4x4"):
    subpixel_conv_transpose(jnp.zeros((1, 3, 3, 2)), jnp.zeros((3, 3, 2, 2)))
