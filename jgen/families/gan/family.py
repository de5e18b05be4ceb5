"""GANs: DCGAN, WGAN-GP and the class-conditional GAN, one family class with the loss, penalty and networks
chosen by config.

One jitted train step is n_critic discriminator (critic) updates, one per stacked batch
(`train.batches_per_step = n_critic`, batches [k, B, ...]), unrolled, then one generator update
against the updated discriminator on a fresh draw of B latents. The step's key is split into k + 1 keys:
critic update i uses key i, the generator update the last (`critic_update` and `generator_update` are the
two halves, so a test can run them separately). The generator's batch statistics from the critic updates'
fake images are discarded; its own update keeps them, once per step. A spectrally normalised
discriminator advances its power iteration once per critic update.

Model block: latent_dim; gen_channels / disc_channels (one entry per resolution level); upsample
("transpose" | "nearest"); disc_norm ("none" | "layer"); spectral_norm; loss ("ns" | "hinge" |
"wasserstein"); penalty ("none" | "gp" | "r1") with penalty_weight (GP's lambda, R1's gamma); label_smoothing
(one-sided, "ns" only); label_dim (the conditional generator's label embedding). Generator EMA:
`optim.gen.ema_decay`. Checkpoints rank by FID-FMNIST when the loop computes it (`train.evals = "fid:N"`).
Images are mapped to [-1, 1] for the networks; samples are returned in [0, 1].
"""

import jax
import jax.numpy as jnp

from jgen import config_schema
from jgen.families.gan import networks, objectives
from jgen.family import Family
from jgen.nn.spectral_norm import update_spectral_norms
from jgen.registry import register
from jgen.train.state import batch_stats, merge_network


class GAN(Family):
  mixed_precision = True
  latents = "decode"  # a generator maps z ~ N(0, I) to images; nothing encodes
  latent_prior = "gaussian"
  progress_metric = "d_loss"
  conditional = False
  choices = {"upsample": networks.UPSAMPLINGS, "disc_norm": networks.DISC_NORMS, "loss": objectives.LOSSES,
             "penalty": objectives.PENALTIES}

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(latent_dim=64, gen_channels=(128, 64), disc_channels=(64, 128), upsample="transpose",
                   disc_norm="none", spectral_norm=False, loss="ns", penalty="none", penalty_weight=10.0,
                   label_smoothing=0.0, label_dim=32)
    adam = config_schema.optim_block(lr=2e-4, b1=0.5)
    d.optim = {"gen": dict(adam), "disc": dict(adam)}
    return d

  @classmethod
  def check_model(cls, model):
    if model.loss == "wasserstein" and model.penalty == "none" and not model.spectral_norm:
      raise ValueError("model.loss='wasserstein' needs a Lipschitz critic: set model.penalty='gp' (WGAN-GP) or "
                       "model.spectral_norm=True")
    if model.label_smoothing and model.loss != "ns":
      raise ValueError(f"model.label_smoothing={model.label_smoothing} applies to the non-saturating loss only "
                       f"(model.loss={model.loss!r}); set it to 0")
    if not 0.0 <= model.label_smoothing < 0.5:
      raise ValueError(f"model.label_smoothing={model.label_smoothing}: give a value in [0, 0.5)")
    if model.penalty != "none" and model.penalty_weight <= 0:
      raise ValueError(f"model.penalty_weight={model.penalty_weight} with penalty {model.penalty!r}: give a "
                       f"weight > 0 (10 for gp) or set model.penalty='none'")

  def __init__(self, config, spec):
    super().__init__(config, spec)
    if spec.kind != "image":
      raise ValueError(f"{config.model.name} generates images; the dataset holds {spec.kind}")
    for key in ("gen_channels", "disc_channels"):
      for side in spec.shape[:2]:
        try:
          networks.base_side(side, len(config.model[key]))
        except ValueError:
          raise ValueError(f"model.{key} has {len(config.model[key])} levels, but the image side {side} is not "
                           f"divisible by 2**{len(config.model[key])}: use fewer levels") from None
    self.num_classes = spec.num_classes if self.conditional else 0
    if self.conditional and not self.num_classes:
      raise ValueError(f"{config.model.name} conditions on labels; the dataset has none")

  @property
  def main_metric(self):
    """FID-FMNIST where the loop computes it (train.evals has fid), else the discriminator's view (unranked)."""
    return "fid_fmnist" if "fid" in self.config.train.evals else "d_real"

  @property
  def best_mode(self):
    return "min" if self.main_metric == "fid_fmnist" else None

  def make_networks(self, rngs):
    m = self.config.model
    return {"gen": networks.Generator(m.latent_dim, self.spec.shape, tuple(m.gen_channels), upsample=m.upsample,
                                      num_classes=self.num_classes, label_dim=m.label_dim,
                                      dtype=self.compute_dtype, rngs=rngs),
            "disc": networks.Discriminator(self.spec.shape, tuple(m.disc_channels), norm=m.disc_norm,
                                           spectral_norm=m.spectral_norm, num_classes=self.num_classes,
                                           dtype=self.compute_dtype, rngs=rngs)}

  # ---- networks with a state's weights ------------------------------------------------------------
  def _generator(self, state, params=None, train=False):
    gen = merge_network(self.graphdefs["gen"], state.params["gen"] if params is None else params,
                        state.model_state["gen"])
    if not train:
      gen.eval()
    return gen

  def _discriminator(self, state, params=None):
    return merge_network(self.graphdefs["disc"], state.params["disc"] if params is None else params,
                         state.model_state["disc"])

  def _labels(self, batch):
    return batch["label"] if self.conditional else None

  def _latents(self, rng, n):
    return jax.random.normal(rng, (n, self.config.model.latent_dim))

  # ---- training ------------------------------------------------------------------------------------
  def critic_update(self, state, batch, rng):
    """One discriminator update on one batch (unstacked [B, ...]) against fresh generator samples."""
    m = self.config.model
    real = batch["x"] * 2.0 - 1.0
    label = self._labels(batch)  # the generated half takes the real half's labels (one class histogram)
    z_rng, penalty_rng = jax.random.split(rng)
    gen = self._generator(state, train=True)  # train-mode batch norm, its statistics discarded
    fake = jax.lax.stop_gradient(gen(self._latents(z_rng, real.shape[0]), label))
    disc = self._discriminator(state)
    update_spectral_norms(disc)  # the power iteration advances once per critic update
    stats = batch_stats(disc)

    def loss_fn(d_params):
      critic = lambda x, y: merge_network(self.graphdefs["disc"], d_params, stats)(x, y)
      real_logits, fake_logits = critic(real, label), critic(fake, label)
      loss = objectives.discriminator_loss(m.loss, real_logits, fake_logits, m.label_smoothing)
      penalty = jnp.zeros(())
      if m.penalty == "gp":
        penalty = objectives.gradient_penalty(critic, real, fake, penalty_rng, label)
      elif m.penalty == "r1":
        penalty = 0.5 * objectives.r1_penalty(critic, real, label)
      total = loss + m.penalty_weight * penalty if m.penalty != "none" else loss
      return total, {"d_loss": total, "d_penalty": penalty, "d_real": real_logits.mean(),
                     "d_fake": fake_logits.mean(), "wasserstein_estimate": real_logits.mean() - fake_logits.mean()}

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["disc"])
    return self.apply_gradients(state, "disc", grads, stats), metrics

  def generator_update(self, state, rng, n, label=None):
    """One generator update against the current discriminator, on n fresh latents (labels `label`)."""
    disc = self._discriminator(state)

    def loss_fn(g_params):
      gen = self._generator(state, g_params, train=True)
      logits = disc(gen(self._latents(rng, n), label), label)
      return objectives.generator_loss(self.config.model.loss, logits), batch_stats(gen)

    (g_loss, gen_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["gen"])
    return self.apply_gradients(state, "gen", grads, gen_stats), {"g_loss": g_loss}

  def train_step(self, state, batch, rng):
    k = self.config.train.batches_per_step
    keys = jax.random.split(rng, k + 1)
    if k == 1:
      state, d_metrics = self.critic_update(state, batch, keys[0])
      last = batch
    else:  # n-critic: one critic update per stacked batch, unrolled (XLA:CPU runs convs in a scan ~4x slower)
      per_update = []
      for i in range(k):
        last = jax.tree.map(lambda a: a[i], batch)
        state, m = self.critic_update(state, last, keys[i])
        per_update.append(m)
      d_metrics = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *per_update)
    n = last["x"].shape[0]
    state, g_metrics = self.generator_update(state, keys[k], n, self._labels(last))
    metrics = {**d_metrics, **g_metrics, "loss": d_metrics["d_loss"] + g_metrics["g_loss"]}
    return state.replace(step=state.step + 1), metrics

  def eval_step(self, state, batch, rng):
    """The discriminator's outputs on held-out real images and on as many samples (their labels where
    conditional): the gap is the critic's Wasserstein estimate for a WGAN."""
    disc = self._discriminator(state)
    label = self._labels(batch)
    n = batch["x"].shape[0]
    fake = self.sample(state, rng, n, None if label is None else {"label": label}) * 2.0 - 1.0
    return {"d_real": disc(batch["x"] * 2.0 - 1.0, label), "d_fake": disc(fake, label)}

  # ---- sampling ------------------------------------------------------------------------------------
  def sample(self, state, rng, n, cond=None):
    """Images in [0, 1] from the generator (its EMA weights where kept); a conditional GAN takes
    cond["label"] [n], default: the classes in turn."""
    z_rng, label_rng = jax.random.split(rng)
    if self.conditional and cond is None:
      cond = self.default_cond(label_rng, n)
    return self.decode(state, self._latents(z_rng, n), cond)

  def decode(self, state, z, cond=None):
    label = None
    if self.conditional:
      label = (cond or {}).get("label")
      if label is None:
        label = jnp.arange(z.shape[0], dtype=jnp.int32) % self.num_classes
      label = jnp.broadcast_to(jnp.asarray(label, jnp.int32), (z.shape[0],))
    return (self._generator(state, state.inference_params("gen"))(z, label) + 1.0) / 2.0


@register("gan.dcgan", family="GAN")
class DCGAN(GAN):
  """DCGAN (Radford et al. 2016): non-saturating loss, batch-norm generator, Adam(2e-4, b1 0.5)."""


@register("gan.wgan_gp", family="GAN")
class WGANGP(GAN):
  """WGAN-GP (Gulrajani et al. 2017): a layer-normalised critic, Wasserstein loss, gradient penalty 10,
  Adam(1e-4, b1 0.5, b2 0.9); n_critic = train.batches_per_step (5 in its configs)."""

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(loss="wasserstein", penalty="gp", penalty_weight=10.0, disc_norm="layer")
    adam = config_schema.optim_block(lr=1e-4, b1=0.5, b2=0.9)
    d.optim = {"gen": dict(adam), "disc": dict(adam)}
    return d


@register("gan.cgan", family="GAN")
class ConditionalGAN(GAN):
  """Class-conditional GAN: label embedding concatenated to z in the generator, a projection discriminator
  (Miyato & Koyama 2018); labels arrive through `cond["label"]`."""
  conditional = True
  conditions = ("label",)
  latent_conditions = ("label",)
