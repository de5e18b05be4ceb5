"""Mixed precision: `model.dtype` names the compute dtype of a family's networks.

Parameters and optimizer state stay float32 (Flax's `param_dtype`); layers built
with `dtype=compute_dtype(model.dtype)` cast their inputs and weights to it, so
convolutions, matmuls and attention run in bfloat16 while the gradients, the
Adam moments and the weights they update keep float32. Losses and likelihoods
are computed in float32 from the network's outputs (`to_float32`): a
log-density summed over 784 pixels in bfloat16 would lose its third digit.
"""

import jax
import jax.numpy as jnp

DTYPES = ("float32", "bfloat16")


def compute_dtype(name: str) -> jnp.dtype:
  if name not in DTYPES:
    raise ValueError(f"model.dtype={name!r}: use one of {', '.join(DTYPES)}")
  return jnp.dtype(name)


def to_float32(tree):
  """Casts a network's floating outputs back to float32 before any loss or density is computed from them."""
  return jax.tree.map(lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)
