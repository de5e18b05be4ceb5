"""The exact normaliser of a 2-D energy on a box, by midpoint quadrature on a grid.

In two dimensions Z = integral over the box of exp(-E(x)) dx is a sum over a fine
grid, so a 2-D EBM has a test log-likelihood in nats (up to the grid's error,
which shrinks as resolution^-2 for a smooth energy) and its density can be drawn.
The box is the one the model lives on: Langevin clamps its samples to it.
"""

import jax
import jax.numpy as jnp


def grid(low: float, high: float, resolution: int):
  """Cell centres [resolution**2, 2] of a resolution x resolution grid over [low, high]^2, and one cell's area."""
  width = (high - low) / resolution
  centres = low + width * (jnp.arange(resolution) + 0.5)
  xx, yy = jnp.meshgrid(centres, centres, indexing="xy")
  return jnp.stack([xx.ravel(), yy.ravel()], axis=1), width**2


def log_normaliser(energy_fn, low: float, high: float, resolution: int) -> jax.Array:
  """log Z = log sum_cells exp(-E(centre)) * area, for `energy_fn` points [N, 2] -> energies [N]."""
  points, area = grid(low, high, resolution)
  return jax.nn.logsumexp(-energy_fn(points)) + jnp.log(area)
