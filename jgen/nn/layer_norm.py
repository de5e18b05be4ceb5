"""nnx.LayerNorm over the last axis, ending in jgen.nn.scale_shift (its parameter gradients as products).

The same parameters, random streams and function: statistics in at least float32, E[x^2] - E[x]^2 clipped
at 0; the input and parameters cast to `dtype` first, as nnx.LayerNorm's promotion does. No mask.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.nn.scale_shift import scale_shift


class LayerNorm(nnx.LayerNorm):

  def __call__(self, x):
    scale, bias = self.scale[...], self.bias[...]
    dtype = self.dtype or jnp.result_type(x, scale, bias)
    stats_dtype = jnp.promote_types(dtype, jnp.float32)
    x, scale, bias = (a.astype(dtype).astype(stats_dtype) for a in (x, scale, bias))
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=-1, keepdims=True) - jnp.square(mean), 0.0)
    x_hat = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    return scale_shift(x_hat, scale, bias).astype(dtype)
