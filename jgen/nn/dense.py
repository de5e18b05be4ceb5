"""`Dense`: nnx.Linear (the same parameters, initialisers and function) with its gradients as matrix products.

The bias gradient of a wide layer over many rows is the slow part of nnx.Linear's backward pass on XLA:CPU:
the sum over [4096, 512] rows of the transformer's MLP became a tree of reduce-windows, ~9 ms a layer of a
~590 ms step (benchmarks/step_profile.py). `add_bias` computes it as one matrix-vector product, and
`feature_matmul` the kernel gradient as one row-major matrix product. The transformer's step went from 1.71 /
1.66 to 2.41 / 1.98 steps/s (two interleaved pairs, benchmarks/vs_pytorch.py, 2-core CPU).
"""

from flax import nnx

from jgen.nn.bias import add_bias
from jgen.nn.feature_matmul import feature_matmul


class Dense(nnx.Linear):
  """nnx.Linear whose gradients are matrix products (jgen.nn.bias, jgen.nn.feature_matmul)."""

  def __call__(self, inputs, out_sharding=None):
    if out_sharding is not None:  # an explicitly sharded output is nnx.Linear's own business
      return super().__call__(inputs, out_sharding)
    kernel = self.kernel[...]
    bias = self.bias[...] if self.bias is not None else None
    inputs, kernel, bias = self.promote_dtype((inputs, kernel, bias), dtype=self.dtype)
    y = feature_matmul(inputs, kernel)
    return y if bias is None else add_bias(y, bias)
