"""Rotary position embedding (Su et al. 2021), with the inverse rotation as its gradient.

Pairs (x_i, x_{i + d/2}) of each head's features are rotated by position * base^(-2i/d). The rotation is
orthogonal, so its vector-Jacobian product is the rotation by the negative angle: one elementwise pass like
the forward one. Left to autodiff, XLA:CPU back-propagated the two half-slices as pads summed into a
gradient, a slower pass than the forward's. The angles come from integer positions and get no gradient.
"""

import jax
import jax.numpy as jnp

ROTARY_BASE = 10_000.0


def rotary(x, positions, base: float = ROTARY_BASE):
  """x [B, T, H, d] with position positions[t] at t, rotated pairwise; float32 angles, x's dtype out."""
  half = x.shape[-1] // 2
  freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angles = positions.astype(jnp.float32)[:, None] * freqs  # [T, d/2]
  return _rotate(x, jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :])


@jax.custom_vjp
def _rotate(x, cos, sin):
  half = x.shape[-1] // 2
  x1, x2 = x[..., :half], x[..., half:]
  return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def _forward(x, cos, sin):
  return _rotate(x, cos, sin), (cos, sin)


def _backward(residual, g):
  cos, sin = residual
  return _rotate(g, cos, -sin), jnp.zeros_like(cos), jnp.zeros_like(sin)


_rotate.defvjp(_forward, _backward)
