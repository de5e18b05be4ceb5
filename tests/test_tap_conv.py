"""conv_by_taps is the 'SAME' convolution restricted to its taps; MaskedConv2d is the masked-kernel convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn.masked import MaskedConv2d, causal_mask
from jgen.nn.tap_conv import conv_by_taps
from tests.helpers import vjp_both


def _conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("kh,kw", [(1, 1), (3, 3), (2, 4), (5, 3)])
def test_every_tap_is_the_same_convolution(kh, kw):
  x = jax.random.normal(jax.random.key(0), (2, 6, 7, 3))
  kernel = jax.random.normal(jax.random.key(1), (kh, kw, 3, 4))
  taps = [(i, j) for i in range(kh) for j in range(kw)]
  g = jax.random.normal(jax.random.key(2), (2, 6, 7, 4))
  ours, ref = vjp_both(lambda x, k: conv_by_taps(x, k, taps), _conv, x, kernel, g)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_left_out_taps_count_as_zero_weights():
  x = jax.random.normal(jax.random.key(0), (2, 5, 5, 2))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 2, 3))
  taps = [(0, 0), (0, 2), (1, 1), (2, 0)]
  keep = np.zeros((3, 3, 1, 1), np.float32)
  for i, j in taps:
    keep[i, j] = 1.0
  g = jax.random.normal(jax.random.key(2), (2, 5, 5, 3))
  ours, ref = vjp_both(lambda x, k: conv_by_taps(x, k, taps), lambda x, k: _conv(x, k * keep), x, kernel, g)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
  assert not np.any(np.asarray(ours[2])[keep[..., 0, 0] == 0])  # no gradient reaches a left-out tap


def test_no_taps_is_zero():
  y = conv_by_taps(jnp.ones((1, 3, 3, 2)), jnp.ones((1, 1, 2, 5)), [])
  assert y.shape == (1, 3, 3, 5) and not np.any(np.asarray(y))


@pytest.mark.parametrize("kernel,mask_type,channels", [(7, "A", 1), (3, "B", 1), (1, "B", 1), (3, "A", 3),
                                                       (1, "B", 3)])
def test_masked_conv_is_the_masked_kernel_convolution(kernel, mask_type, channels):
  layer = MaskedConv2d(6, 9, kernel, mask_type, channels, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(3), (2, 8, 8, 6))
  mask = causal_mask((kernel, kernel), 6, 9, channels, mask_type)
  ref = _conv(x, layer.conv.kernel[...] * mask) + layer.conv.bias[...]
  np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(ref), rtol=1e-5, atol=1e-5)
