"""GAN losses and discriminator penalties, as pure functions of logits and of a critic function.

Losses (the discriminator's, the generator's), on discriminator outputs for real and generated images:
- "ns": the non-saturating loss of Goodfellow et al. 2014 (binary cross-entropy, the generator maximises
  log D(G(z))), with optional one-sided label smoothing (real targets 1 - smoothing);
- "hinge": max(0, 1 - D(x)) + max(0, 1 + D(G(z))) for the discriminator, -D(G(z)) for the generator;
- "wasserstein": the critic's D(G(z)) - D(x), the generator's -D(G(z)) (WGAN; needs a Lipschitz constraint).

Penalties, added to the discriminator's loss, from per-example input gradients (`jax.grad` under `jax.vmap`,
so each example's gradient is its own even if the critic were not per-example):
- "gp": lambda * (||grad_x D(x_hat)|| - 1)^2 on random interpolates x_hat = e x + (1 - e) G(z) (Gulrajani et
  al. 2017);
- "r1": gamma / 2 * ||grad_x D(x)||^2 on real images (Mescheder et al. 2018).
"""

import jax
import jax.numpy as jnp

LOSSES = ("ns", "hinge", "wasserstein")
PENALTIES = ("none", "gp", "r1")
_NORM_FLOOR = 1e-12  # keeps d||g||/dg finite where a gradient is exactly zero


def discriminator_loss(kind: str, real_logits, fake_logits, label_smoothing: float = 0.0) -> jax.Array:
  """Mean over the batch of the discriminator's (critic's) loss."""
  if kind == "ns":
    target = 1.0 - label_smoothing  # one-sided: only the real targets are smoothed
    real = target * jax.nn.softplus(-real_logits) + (1.0 - target) * jax.nn.softplus(real_logits)
    return jnp.mean(real + jax.nn.softplus(fake_logits))
  if kind == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits))
  if kind == "wasserstein":
    return jnp.mean(fake_logits - real_logits)
  raise ValueError(f"unknown GAN loss {kind!r}; use one of {LOSSES}")


def generator_loss(kind: str, fake_logits) -> jax.Array:
  if kind == "ns":
    return jnp.mean(jax.nn.softplus(-fake_logits))
  if kind in ("hinge", "wasserstein"):
    return -jnp.mean(fake_logits)
  raise ValueError(f"unknown GAN loss {kind!r}; use one of {LOSSES}")


def input_gradient_norms(critic, x, label=None) -> jax.Array:
  """||grad_x critic(x)|| for every example [B], each gradient taken on that example alone."""
  def one(xi, yi):
    yi = None if yi is None else yi[None]
    return critic(xi[None], yi)[0]

  grads = jax.vmap(jax.grad(one), in_axes=(0, None if label is None else 0))(x, label)
  sq = jnp.sum(jnp.square(grads).reshape(x.shape[0], -1), axis=-1)
  return jnp.sqrt(jnp.maximum(sq, _NORM_FLOOR))


def gradient_penalty(critic, real, fake, rng, label=None) -> jax.Array:
  """E[(||grad D(x_hat)|| - 1)^2] over interpolates x_hat = e real + (1 - e) fake, e ~ U(0, 1) per example."""
  e = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1))
  x_hat = e * real + (1.0 - e) * fake
  return jnp.mean(jnp.square(input_gradient_norms(critic, x_hat, label) - 1.0))


def r1_penalty(critic, real, label=None) -> jax.Array:
  """E[||grad D(x)||^2] on real images (multiply by gamma / 2)."""
  return jnp.mean(jnp.square(input_gradient_norms(critic, real, label)))
