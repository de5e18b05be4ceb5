"""Spectral normalisation (Miyato et al. 2018) of a linear or conv layer, as a pure function of its weights.

The layer's kernel W (flattened to [fan_in, out]) is divided by an estimate of its
largest singular value, sigma = v^T W u, from one power-iteration step that starts
at a stored vector u (a `BatchStat`, so it lives in `TrainState.model_state`).
A call never changes u: the owner advances it once per train step with
`update_spectral_norms`, so every call inside a step (an EBM's 60 Langevin
steps and its loss) sees the same normalised weights.

Not `nnx.SpectralNorm`: it writes the normalised kernel back into the wrapped
layer's Param, so each further call in the same step normalises again.
"""

import jax
import jax.numpy as jnp
from flax import nnx

_EPS = 1e-12


def _normalize(v):
  return v / (jnp.linalg.norm(v) + _EPS)


def _power_step(w, u):
  """One power-iteration step on w [fan_in, out] from u [out]: (sigma, new u), without gradients into u, v."""
  v = jax.lax.stop_gradient(_normalize(w @ u))
  u = jax.lax.stop_gradient(_normalize(w.T @ v))
  return v @ w @ u, u


class SpectralNormed(nnx.Module):
  """Wraps an `nnx.Linear` or `nnx.Conv` (with bias); calls it with the kernel divided by its spectral norm."""

  def __init__(self, layer: nnx.Module, *, rngs: nnx.Rngs, init_iters: int = 20):
    self.layer = layer
    w = self._matrix()
    u = _normalize(jax.random.normal(rngs.params(), (w.shape[-1],)))
    for _ in range(init_iters):  # start near the top singular vector, so the first steps are normalised too
      _, u = _power_step(w, u)
    self.u = nnx.BatchStat(u)

  def _matrix(self):
    kernel = self.layer.kernel[...]
    return kernel.reshape(-1, kernel.shape[-1])

  def sigma(self):
    return _power_step(self._matrix(), self.u[...])[0]

  def update(self):
    """One power-iteration step of the stored u (once per train step)."""
    self.u[...] = _power_step(self._matrix(), self.u[...])[1]

  def __call__(self, x):
    # The layer is linear in its kernel: layer(x; W / sigma) = (layer(x; W) - b) / sigma + b, in the layer's
    # compute dtype (sigma itself comes from the float32 weights).
    y = self.layer(x)
    bias = self.layer.bias[...].astype(y.dtype)
    return (y - bias) / self.sigma().astype(y.dtype) + bias


def maybe_normed(layer: nnx.Module, spectral_norm: bool, rngs: nnx.Rngs) -> nnx.Module:
  return SpectralNormed(layer, rngs=rngs) if spectral_norm else layer


def update_spectral_norms(module: nnx.Module) -> None:
  """Advances the power iteration of every `SpectralNormed` layer inside `module` by one step."""
  for _, sub in nnx.iter_modules(module):
    if isinstance(sub, SpectralNormed):
      sub.update()
