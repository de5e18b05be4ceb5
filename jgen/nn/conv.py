"""`Conv`: nnx.Conv (the same parameters, initialisers, random draws and function) whose bias gradient is a
matrix-vector product.

nnx.Conv adds its bias inside the convolution's output fusion, and the bias gradient, a sum of the incoming
gradient over batch and positions, became a column reduction that XLA:CPU fused with the gradient's producer
and ran slowly: 7.9 ms of the Glow `cpu` step's ~85 ms (benchmarks/step_profile.py, `wrapped_reduce` from
`transpose(jvp())/reduce_sum`). Here the convolution is nnx.Conv's own, without its bias, and the bias is
added by `jgen.nn.bias.add_bias`, whose gradient is ones[N] @ g[N, C], a dot for XLA's matmul library.
"""

from flax import nnx

from jgen.nn.bias import add_bias


class Conv(nnx.Conv):
  """nnx.Conv whose bias is added by `add_bias`. Constructed exactly as nnx.Conv (the kernel's random key is
  drawn first, then the bias's, so a network gets bit-identical parameters under the same names)."""

  def __init__(self, in_features: int, out_features: int, kernel_size, *, use_bias: bool = True,
               bias_init=nnx.initializers.zeros_init(), rngs: nnx.Rngs, **kwargs):
    # nnx.Conv without a bias computes the convolution alone; the bias is made here with the key nnx.Conv
    # would have given it (the next one after the kernel's).
    bias_metadata = kwargs.pop("bias_metadata", {})
    super().__init__(in_features, out_features, kernel_size, use_bias=False, rngs=rngs, **kwargs)
    self.adds_bias = use_bias  # nnx.Conv's own `use_bias` is False: it computes the convolution alone
    if use_bias:
      self.bias = nnx.Param(bias_init(rngs.params(), (out_features,), self.param_dtype), **bias_metadata)

  def __call__(self, inputs, out_sharding=None):
    y = super().__call__(inputs, out_sharding)
    return add_bias(y, self.bias[...].astype(y.dtype)) if self.adds_bias else y
