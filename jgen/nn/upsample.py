"""A stride-2 4x4 transposed convolution lowered as stride-1 convolutions plus depth-to-space (sub-pixel).

`SubpixelConvTranspose(cin, cout)` holds exactly the parameters of
`nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding="SAME")` (`kernel` [4, 4, cin, cout] and
`bias` [cout], same initializers drawn in the same order, so checkpoints, parameter counts and seeded inits are
unchanged) and computes the same function. XLA:CPU lowers the transposed convolution's kernel gradient as a
convolution over the zero-dilated input with the batch as features, several times slower than the layer's
forward pass; here every convolution has stride 1 and no dilation.

The math: `lax.conv_transpose` with SAME padding dilates the input by 2, pads it by 2 on each side and
correlates with the (unflipped) kernel, so along one axis

  y[2a]     = x[a - 1] w[0] + x[a] w[2]
  y[2a + 1] = x[a] w[1] + x[a + 1] w[3]

(x is zero outside [0, H)). Output phase p in {0, 1} is a 2-tap stride-1 correlation with the sub-kernel
w[p::2] over x padded by one row on one side (before for p = 0, after for p = 1); in 2-D each of the four
output phases (p, q) uses the 2x2 sub-kernel w[p::2, q::2]. The phases are then interleaved into the 2H x 2W
output. With few output channels the four thin convolutions cost more than their work, so those layers run
one 3x3 convolution with all four phases stacked as 4 * cout output channels (zeros where a phase does not
reach) instead; both forms are exact.
"""

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn import dtypes
from flax.nnx.nn.linear import default_bias_init, default_kernel_init
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")
# Below this many output channels the single 3x3 convolution (4 * cout outputs) beats four 2x2 phase
# convolutions on CPU (benchmarks/conv_layers.py); above it the 3x3 form's 2.25x extra work dominates.
FUSED_BELOW = 4
# Phase p's taps over x padded by one on both sides: window offset t in {0, 1, 2} -> kernel index (or none).
_TAPS = ((0, 2, None), (None, 1, 3))


def _interleave(z, cout: int):
  """[B, H, W, 2, 2, cout] phases (row, column) -> [B, 2H, 2W, cout] (depth-to-space)."""
  b, h, w = z.shape[:3]
  return z.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, cout)


def _phase_convs(x, kernel, precision):
  """Four 2x2 stride-1 convolutions, one per output phase, interleaved."""
  rows = []
  for p in range(2):
    pad_h = (1, 0) if p == 0 else (0, 1)
    cols = [lax.conv_general_dilated(x, kernel[p::2, q::2], (1, 1), (pad_h, (1, 0) if q == 0 else (0, 1)),
                                     dimension_numbers=_DN, precision=precision) for q in range(2)]
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2 (q), cout]
  z = jnp.stack(rows, axis=2)  # [B, H, 2 (p), W, 2 (q), cout]: already in output order
  b, h, _, w, _, cout = z.shape
  return z.reshape(b, 2 * h, 2 * w, cout)


def fused_kernel(kernel):
  """[4, 4, cin, cout] -> [3, 3, cin, 4 * cout]: all four phases' 2x2 sub-kernels in one 3x3 window."""
  cin, cout = kernel.shape[2:]
  zero = jnp.zeros((cin, cout), kernel.dtype)

  def tap(p, q, s, t):
    i, j = _TAPS[p][s], _TAPS[q][t]
    return zero if i is None or j is None else kernel[i, j]

  return jnp.stack([jnp.stack([jnp.stack([tap(p, q, s, t) for p in range(2) for q in range(2)], axis=1)
                               .reshape(cin, 4 * cout) for t in range(3)]) for s in range(3)])


def _fused_conv(x, kernel, precision):
  """One 3x3 stride-1 convolution producing the four phases as channels, then depth-to-space."""
  z = lax.conv_general_dilated(x, fused_kernel(kernel), (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DN,
                               precision=precision)
  cout = kernel.shape[-1]
  return _interleave(z.reshape(*z.shape[:3], 2, 2, cout), cout)


def subpixel_conv_transpose(x, kernel, *, fused: bool | None = None, precision=None):
  """`lax.conv_transpose(x, kernel, (2, 2), "SAME")` for NHWC x and a [4, 4, cin, cout] kernel.

  `fused` picks the single 3x3 convolution over the four phase convolutions; None picks by the output
  channels (FUSED_BELOW).
  """
  if kernel.shape[:2] != (4, 4):
    raise ValueError(f"subpixel_conv_transpose needs a 4x4 kernel, got {kernel.shape}")
  if fused is None:
    fused = kernel.shape[-1] < FUSED_BELOW
  return (_fused_conv if fused else _phase_convs)(x, kernel, precision)


class SubpixelConvTranspose(nnx.Module):
  """`nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding="SAME")`: same parameters, same function,
  [*batch, H, W, cin] -> [*batch, 2H, 2W, cout], lowered as stride-1 convolutions + depth-to-space.

  `dtype` is the compute dtype (None: inferred from the input and parameters, as nnx layers do); parameters
  are created in `param_dtype`.
  """

  def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True, dtype=None,
               param_dtype=jnp.float32, precision=None, kernel_init=default_kernel_init,
               bias_init=default_bias_init, rngs: nnx.Rngs):
    self.in_features, self.out_features = in_features, out_features
    self.use_bias = use_bias
    self.dtype, self.param_dtype, self.precision = dtype, param_dtype, precision
    # Drawn in nnx.ConvTranspose's order (kernel, then bias) so a seed gives the same initial weights.
    self.kernel = nnx.Param(kernel_init(rngs.params(), (4, 4, in_features, out_features), param_dtype))
    self.bias = (nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype)) if use_bias
                 else nnx.data(None))

  def __call__(self, inputs: jax.Array) -> jax.Array:
    batch_shape = inputs.shape[:-3]
    x = inputs.reshape(-1, *inputs.shape[-3:])
    bias = self.bias[...] if self.bias is not None else None
    x, kernel, bias = dtypes.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
    y = subpixel_conv_transpose(x, kernel, precision=self.precision)
    if bias is not None:
      y = y + bias
    return y.reshape(*batch_shape, *y.shape[1:])
