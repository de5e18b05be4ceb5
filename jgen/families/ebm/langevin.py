"""Stochastic gradient Langevin dynamics on an energy, as one `lax.scan`.

Each step adds Gaussian noise, then moves down the energy's gradient:

  x' = clamp(x + noise * N(0, I)),   x <- clamp(x' - step_size * clip(grad E(x'))).

With noise = sqrt(2 * step_size), no clipping and no clamping this is the
unadjusted Langevin algorithm, whose chains approach p(x) ~ exp(-E(x)) as the
step size shrinks. EBM training decouples the two (the book: step size 10,
noise 0.005, gradients clipped to +-0.03 per pixel): a short, strongly driven
chain that finds low-energy points rather than an exact sampler; clamping keeps
the chain in the data's range.
"""

from typing import Callable

import jax
import jax.numpy as jnp


def langevin(energy_fn: Callable[[jax.Array], jax.Array], x: jax.Array, rng: jax.Array, *, steps: int,
             step_size: float, noise: float, grad_clip: float = 0.0, bounds: tuple[float, float] | None = None
             ) -> jax.Array:
  """`steps` Langevin steps from `x` [B, ...] under `energy_fn` (x -> energies [B], one per example).

  grad_clip > 0 clips each coordinate of the gradient to [-grad_clip, grad_clip]; `bounds` (low, high)
  clamps every coordinate after each move. The result carries no gradient.
  """
  # Examples are independent (no batch statistics), so the gradient of the summed energy is each one's own.
  grad_fn = jax.grad(lambda v: jnp.sum(energy_fn(v)))
  clamp = (lambda v: jnp.clip(v, *bounds)) if bounds is not None else (lambda v: v)

  def step(x, key):
    x = clamp(x + noise * jax.random.normal(key, x.shape, x.dtype))
    g = grad_fn(x)
    if grad_clip > 0:
      g = jnp.clip(g, -grad_clip, grad_clip)
    return clamp(x - step_size * g), None

  x, _ = jax.lax.scan(step, x, jax.random.split(rng, steps))
  return jax.lax.stop_gradient(x)
