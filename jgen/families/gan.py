"""DCGAN: a transposed-conv generator with batch norm and a strided-conv discriminator.

Trained with the non-saturating loss (the generator maximizes log D(G(z))), two
Adam optimizers, and both updates inside one jitted step: the discriminator on
real and generated images, then the generator against the updated discriminator.
Images are mapped to [-1, 1] for the networks; samples are returned in [0, 1].
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgen.family import Family, make_optimizer
from jgen.nn.convnets import ConvDecoder, ConvEncoder
from jgen.registry import register
from jgen.train.state import TrainState, split_module


class Generator(nnx.Module):

  def __init__(self, latent_dim, image_shape, channels, *, rngs):
    self.net = ConvDecoder(latent_dim, image_shape, channels, batch_norm=True, rngs=rngs)

  def __call__(self, z):
    return jnp.tanh(self.net(z))


class Discriminator(nnx.Module):

  def __init__(self, image_shape, channels, *, rngs):
    self.net = ConvEncoder(image_shape, channels, 1, activation=lambda x: nnx.leaky_relu(x, 0.2), rngs=rngs)

  def __call__(self, x):
    return self.net(x)[:, 0]


@register("gan.dcgan", family="GAN")
class DCGAN(Family):
  main_metric = "d_real_prob"
  best_mode = None
  progress_metric = "d_loss"
  log_prob_kind = None

  def init(self, rng, batch):
    m = self.config.model
    image_shape = batch["x"].shape[1:]
    g_rng, d_rng = jax.random.split(rng)
    gen = Generator(m.latent_dim, image_shape, tuple(m.gen_channels), rngs=nnx.Rngs(g_rng))
    disc = Discriminator(image_shape, tuple(m.disc_channels), rngs=nnx.Rngs(d_rng))
    self.gen_def, gen_params, gen_rest = split_module(gen)
    self.disc_def, disc_params, disc_rest = split_module(disc)
    self.tx = {"gen": make_optimizer(self.config.optim.gen), "disc": make_optimizer(self.config.optim.disc)}
    params = {"gen": gen_params, "disc": disc_params}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state={k: self.tx[k].init(v) for k, v in params.items()},
                      extra={"gen_rest": gen_rest, "disc_rest": disc_rest})

  def _generate(self, gen_params, gen_rest, z, train: bool):
    gen = nnx.merge(self.gen_def, gen_params, gen_rest)
    if not train:
      gen.eval()
    x = gen(z)
    return x, split_module(gen)[2]

  def _disc(self, disc_params, disc_rest, x):
    return nnx.merge(self.disc_def, disc_params, disc_rest)(x)

  def train_step(self, state, batch, rng):
    real = batch["x"] * 2.0 - 1.0
    z_d, z_g = jax.random.split(rng)
    n = real.shape[0]
    latent = self.config.model.latent_dim
    p, rest = state.params, state.extra

    # Discriminator: real -> 1, fake -> 0. The generator's batch statistics from
    # this pass are discarded; the generator pass below updates them once per step.
    fake, _ = self._generate(p["gen"], rest["gen_rest"], jax.random.normal(z_d, (n, latent)), train=True)
    fake = jax.lax.stop_gradient(fake)

    def d_loss_fn(d_params):
      real_logits = self._disc(d_params, rest["disc_rest"], real)
      fake_logits = self._disc(d_params, rest["disc_rest"], fake)
      loss = jnp.mean(optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits)) +
                      optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)))
      return loss, (jax.nn.sigmoid(real_logits).mean(), jax.nn.sigmoid(fake_logits).mean())

    (d_loss, (d_real, d_fake)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(p["disc"])
    d_updates, d_opt = self.tx["disc"].update(d_grads, state.opt_state["disc"], p["disc"])
    d_params = optax.apply_updates(p["disc"], d_updates)

    # Generator, non-saturating: maximize log D(G(z)) against the updated discriminator.
    def g_loss_fn(g_params):
      x, gen_rest = self._generate(g_params, rest["gen_rest"], jax.random.normal(z_g, (n, latent)), train=True)
      logits = self._disc(d_params, rest["disc_rest"], x)
      return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits))), gen_rest

    (g_loss, gen_rest), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(p["gen"])
    g_updates, g_opt = self.tx["gen"].update(g_grads, state.opt_state["gen"], p["gen"])
    g_params = optax.apply_updates(p["gen"], g_updates)

    new_state = state.replace(step=state.step + 1, params={"gen": g_params, "disc": d_params},
                              opt_state={"gen": g_opt, "disc": d_opt}, extra={**rest, "gen_rest": gen_rest})
    return new_state, {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}

  def eval_step(self, state, batch, rng):
    """The discriminator's probability of 'real' on held-out real images and on samples."""
    real_logits = self._disc(state.params["disc"], state.extra["disc_rest"], batch["x"] * 2.0 - 1.0)
    fake = self.sample(state, rng, batch["x"].shape[0]) * 2.0 - 1.0
    fake_logits = self._disc(state.params["disc"], state.extra["disc_rest"], fake)
    return {"d_real_prob": jax.nn.sigmoid(real_logits), "d_fake_prob": jax.nn.sigmoid(fake_logits)}

  def sample(self, state, rng, n, **cond):
    z = jax.random.normal(rng, (n, self.config.model.latent_dim))
    x, _ = self._generate(state.params["gen"], state.extra["gen_rest"], z, train=False)
    return (x + 1.0) / 2.0

  def decode(self, state, z):
    return (self._generate(state.params["gen"], state.extra["gen_rest"], z, train=False)[0] + 1.0) / 2.0
