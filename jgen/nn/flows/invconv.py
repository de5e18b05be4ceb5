"""Invertible 1x1 convolution (Glow) in its LU parametrisation: W = P L (U + diag(sign * exp(log_abs_diag))).

Each position's channel vector is multiplied by W, so log |det| = H * W * log |det W| = H * W *
sum(log_abs_diag): linear in the parameters, no determinant computed. P (a permutation) and the signs are
fixed at construction and live in the graph as static tuples, not as trained arrays; L is unit lower
triangular and U strictly upper triangular (masks keep them so). W starts as a random rotation drawn with
numpy from `seed`, so the graph built from the spec alone and the initialised network agree on P. On
vectors [B, D] it is an invertible dense layer.
"""

import jax.numpy as jnp
import numpy as np
import scipy.linalg
from flax import nnx
from jax.scipy.linalg import solve_triangular

from jgen.nn.flows.base import Bijector


class InvConv1x1(Bijector):

  def __init__(self, channels: int, seed: int = 0):
    rotation = np.linalg.qr(np.random.default_rng(seed).standard_normal((channels, channels)))[0]
    p, lower, upper = scipy.linalg.lu(rotation)  # rotation = p @ lower @ upper
    diag = np.diag(upper)
    self.perm = tuple(int(i) for i in np.argmax(p, axis=1))  # (P v)_i = v[perm[i]]
    self.sign = tuple(float(s) for s in np.sign(diag))
    self.lower = nnx.Param(jnp.asarray(np.tril(lower, -1), jnp.float32))
    self.upper = nnx.Param(jnp.asarray(np.triu(upper, 1), jnp.float32))
    self.log_abs_diag = nnx.Param(jnp.asarray(np.log(np.abs(diag)), jnp.float32))

  def _factors(self, dtype):
    c = len(self.perm)
    eye = jnp.eye(c, dtype=dtype)
    p = jnp.asarray(np.eye(c)[list(self.perm)], dtype)
    lower = jnp.tril(self.lower[...], -1) + eye
    upper = jnp.triu(self.upper[...], 1) + jnp.diag(jnp.asarray(self.sign, dtype) * jnp.exp(self.log_abs_diag[...]))
    return p, lower, upper

  def weight(self, dtype=jnp.float32):
    p, lower, upper = self._factors(dtype)
    return p @ lower @ upper

  def forward(self, x, ctx=None):
    positions = x[0, ..., 0].size
    z = jnp.einsum("...j,ij->...i", x, self.weight(x.dtype))
    return z, jnp.full(x.shape[:1], positions * jnp.sum(self.log_abs_diag[...]), x.dtype)

  def inverse(self, z, ctx=None):
    p, lower, upper = self._factors(z.dtype)
    eye = jnp.eye(lower.shape[0], dtype=z.dtype)
    # W^-1 = U^-1 L^-1 P^T by two triangular solves: exact to rounding, no general inverse.
    w_inv = solve_triangular(upper, solve_triangular(lower, eye, lower=True, unit_diagonal=True), lower=False) @ p.T
    return jnp.einsum("...j,ij->...i", z, w_inv)
