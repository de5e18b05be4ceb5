"""DCGAN: a transposed-conv generator with batch norm and a strided-conv discriminator.

Trained with the non-saturating loss (the generator maximizes log D(G(z))), two
Adam optimizers, and both updates inside one jitted step: the discriminator on
real and generated images, then the generator against the updated discriminator.
With `optim.gen.ema_decay > 0` samples come from an EMA of the generator. Checkpoints
rank by FID-FMNIST when the loop computes it (`train.evals = "fid:N"`).
Images are mapped to [-1, 1] for the networks; samples are returned in [0, 1].
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgen import config_schema
from jgen.family import Family, merge_stacked
from jgen.nn.convnets import ConvDecoder, ConvEncoder
from jgen.registry import register
from jgen.train.state import batch_stats, merge_network


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
  latents = "decode"  # a generator maps z ~ N(0, I) to images; nothing encodes
  latent_prior = "gaussian"
  progress_metric = "d_loss"

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=64, gen_channels=(64, 32), disc_channels=(32, 64))
    adam = config_schema.optim_block(lr=2e-4, b1=0.5)
    d.optim = {"gen": dict(adam), "disc": dict(adam)}
    return d

  @property
  def main_metric(self):
    """FID-FMNIST where the loop computes it (train.evals has fid), else the discriminator's view (unranked)."""
    return "fid_fmnist" if "fid" in self.config.train.evals else "d_real_prob"

  @property
  def best_mode(self):
    return "min" if self.main_metric == "fid_fmnist" else None

  def make_networks(self, rngs):
    m = self.config.model
    return {"gen": Generator(m.latent_dim, self.spec.shape, tuple(m.gen_channels), rngs=rngs),
            "disc": Discriminator(self.spec.shape, tuple(m.disc_channels), rngs=rngs)}

  def _generator(self, state, params=None, train=False):
    gen = merge_network(self.graphdefs["gen"], state.params["gen"] if params is None else params,
                        state.model_state["gen"])
    if not train:
      gen.eval()
    return gen

  def _discriminator(self, state, params=None):
    return merge_network(self.graphdefs["disc"], state.params["disc"] if params is None else params,
                         state.model_state["disc"])

  def train_step(self, state, batch, rng):
    batch = merge_stacked(batch, self.config.train.batches_per_step)
    real = batch["x"] * 2.0 - 1.0
    z_d, z_g = jax.random.split(rng)
    n = real.shape[0]
    latent = self.config.model.latent_dim

    # Discriminator: real -> 1, fake -> 0. The generator's batch statistics from
    # this pass are discarded; the generator pass below updates them once per step.
    fake = jax.lax.stop_gradient(self._generator(state, train=True)(jax.random.normal(z_d, (n, latent))))

    def d_loss_fn(d_params):
      disc = self._discriminator(state, d_params)
      real_logits, fake_logits = disc(real), disc(fake)
      loss = jnp.mean(optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits)) +
                      optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)))
      return loss, (jax.nn.sigmoid(real_logits).mean(), jax.nn.sigmoid(fake_logits).mean())

    (d_loss, (d_real, d_fake)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.params["disc"])
    state = self.apply_gradients(state, "disc", d_grads)

    # Generator, non-saturating: maximize log D(G(z)) against the updated discriminator.
    def g_loss_fn(g_params):
      gen = self._generator(state, g_params, train=True)
      logits = self._discriminator(state)(gen(jax.random.normal(z_g, (n, latent))))
      return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits))), batch_stats(gen)

    (g_loss, gen_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.params["gen"])
    state = self.apply_gradients(state, "gen", g_grads, gen_stats)
    metrics = {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}
    return state.replace(step=state.step + 1), metrics

  def eval_step(self, state, batch, rng):
    """The discriminator's probability of 'real' on held-out real images and on samples."""
    disc = self._discriminator(state)
    real_logits = disc(batch["x"] * 2.0 - 1.0)
    fake_logits = disc(self.sample(state, rng, batch["x"].shape[0]) * 2.0 - 1.0)
    return {"d_real_prob": jax.nn.sigmoid(real_logits), "d_fake_prob": jax.nn.sigmoid(fake_logits)}

  def sample(self, state, rng, n, cond=None):
    """Images in [0, 1] from the generator (its EMA weights where kept)."""
    return self.decode(state, jax.random.normal(rng, (n, self.config.model.latent_dim)))

  def decode(self, state, z):
    return (self._generator(state, state.inference_params("gen"))(z) + 1.0) / 2.0
