"""What the network predicts (noise epsilon, or velocity v) and the conversions to x_0 and epsilon.

With x_t = a x_0 + b eps (a = sqrt(abar_t), b = sqrt(1 - abar_t), a^2 + b^2 = 1),
the velocity is v = a eps - b x_0, so x_0 = a x_t - b v and eps = b x_t + a v.
"""

import jax.numpy as jnp

from jgen.families.diffusion.schedules import Schedule, _bcast


def _coefs(sched: Schedule, t, x):
  abar = _bcast(sched.alphas_cumprod[t], x)
  return jnp.sqrt(abar), jnp.sqrt(1.0 - abar)


def target(sched: Schedule, kind: str, x0, noise, t):
  """The regression target of the simple loss."""
  if kind == "eps":
    return noise
  if kind == "v":
    a, b = _coefs(sched, t, x0)
    return a * noise - b * x0
  raise ValueError(f"unknown prediction {kind!r}; use 'eps' or 'v'")


def to_eps_x0(sched: Schedule, kind: str, xt, t, out, clip=None):
  """Network output -> (eps, x_0) at (x_t, t). With `clip=(lo, hi)` the x_0 estimate is
  clipped to the data range and eps recomputed to agree with it."""
  a, b = _coefs(sched, t, xt)
  if kind == "eps":
    eps, x0 = out, (xt - b * out) / a
  elif kind == "v":
    eps, x0 = b * xt + a * out, a * xt - b * out
  else:
    raise ValueError(f"unknown prediction {kind!r}; use 'eps' or 'v'")
  if clip is not None:
    x0 = jnp.clip(x0, *clip)
    eps = (xt - a * x0) / b
  return eps, x0
