"""DDPM as a jgen family: the simple loss, an EMA of the weights, DDPM/DDIM sampling with
classifier-free guidance, and the variational bound as the likelihood.

Config (`config.model`): schedule ("linear" | "cosine"), num_steps (T), prediction
("eps" | "v"), variance ("small" | "large": the fixed reverse variance of DDPM
sampling and of the bound), label_conditional (the dataset's labels), p_uncond
(label dropout that trains the unconditional branch for guidance), guidance,
sampler ("ddim" | "ddpm"), sample_steps, ddim_eta, bound_timesteps (the bound in
`eval_step`: 0 = all T terms, k = an unbiased k-term estimate), log_prob_timesteps
(the same for `log_prob`, which `jgen evaluate` reports; 0 by default), dtype
("float32" | "bfloat16": the network's compute dtype, jgen.nn.precision), plus the
network's own fields. The EMA of the weights (`optim.ema_decay`, 0.9999 by default)
samples and evaluates.

Images are scaled from [0, 1] to [-1, 1] on their 8-bit grid (Ho et al.); samples come
back in [0, 1]. Points (toy data) are modelled as they are.
"""

import jax
import jax.numpy as jnp

from jgen.families.diffusion import bound, predictions, samplers
from jgen.families.diffusion.denoisers import MLPDenoiser
from jgen.families.diffusion.schedules import make_schedule, q_sample
from jgen.eval import likelihood
from jgen.family import Family
from jgen.nn import rngs as rngs_lib
from jgen.nn.unet import UNet
from jgen.registry import register


class DDPM(Family):
  """Shared logic; subclasses pick the network."""

  likelihood = "lower_bound"
  mixed_precision = True
  sample_options = {"sampler": "model.sampler", "steps": "model.sample_steps", "eta": "model.ddim_eta"}

  choices = {"prediction": ("eps", "v"), "sampler": ("ddim", "ddpm"), "schedule": ("linear", "cosine"),
             "variance": ("small", "large")}

  @classmethod
  def check_model(cls, model):
    if model.num_steps < 2:  # the bound has a prior term, T - 1 denoising terms and a decoder term
      raise ValueError(f"model.num_steps={model.num_steps}: diffusion needs >= 2 steps (e.g. 1000)")
    if model.schedule == "linear" and model.num_steps <= 20:  # betas up to 0.02 * 1000 / T must stay below 1
      raise ValueError(f"model.num_steps={model.num_steps}: the linear schedule needs more than 20 steps; "
                       f"use more, or model.schedule='cosine'")
    if model.sampler == "ddim" and model.sample_steps > model.num_steps:
      raise ValueError(f"model.sample_steps={model.sample_steps}: DDIM takes at most model.num_steps "
                       f"({model.num_steps}) steps")

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(schedule="linear", num_steps=1000, prediction="eps", variance="small", clip_x0=True,
                   label_conditional=False, p_uncond=0.0, guidance=1.0, sampler="ddim", sample_steps=50,
                   ddim_eta=0.0, bound_timesteps=0, log_prob_timesteps=0)
    d.optim.update(grad_clip=1.0, ema_decay=0.9999)
    return d

  def __init__(self, config, spec):
    super().__init__(config, spec)
    m = config.model
    self.sched = make_schedule(m.schedule, m.num_steps)
    self.images = spec.is_image
    self.num_classes = spec.num_classes if m.label_conditional else 0
    if m.label_conditional and not spec.num_classes:
      raise ValueError("model.label_conditional needs a dataset with labels")
    self.conditions = ("label", "guidance") if self.num_classes else ()
    self.clip = (-1.0, 1.0) if self.images and m.clip_x0 else None
    # Time enters the network on a 0..1000 scale whatever T is.
    self.time_scale = 1000.0 / self.sched.num_steps

  # ---- data <-> model space -------------------------------------------------------------
  def to_model_space(self, x):
    if not self.images:
      return x
    return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0) / 127.5 - 1.0

  def to_data_space(self, x):
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0) if self.images else x

  # ---- the family contract ----------------------------------------------------------------
  def loss(self, model, batch, rng):
    x0 = self.to_model_space(batch["x"])
    b = x0.shape[0]
    rng_t, rng_noise, rng_drop, rng_label = jax.random.split(rng, 4)
    t = jax.random.randint(rng_t, (b,), 0, self.sched.num_steps)
    noise = jax.random.normal(rng_noise, x0.shape, x0.dtype)
    xt = q_sample(self.sched, x0, t, noise)
    label = self._train_label(batch, rng_label)
    out = model(xt, t * self.time_scale, label, rngs=rngs_lib.Rngs(dropout=rng_drop))
    err = (out - predictions.target(self.sched, self.prediction, x0, noise, t))**2
    return jnp.mean(err), {}

  @property
  def prediction(self):
    return self.config.model.prediction

  def eval_step(self, state, batch, rng):
    """Per-example metrics with the EMA weights: the simple loss at a random t, the bound
    "nll" (nats) and, for images, "bits_per_dim" = nll / (D ln 2) of the 8-bit data."""
    model = self.network(state)
    rng_loss, rng_bound = jax.random.split(rng)
    x0 = self.to_model_space(batch["x"])
    b = x0.shape[0]
    t = jax.random.randint(rng_loss, (b,), 0, self.sched.num_steps)
    noise = jax.random.normal(jax.random.fold_in(rng_loss, 1), x0.shape, x0.dtype)
    xt = q_sample(self.sched, x0, t, noise)
    label = self._eval_label(batch)
    out = model(xt, t * self.time_scale, label)
    err = (out - predictions.target(self.sched, self.prediction, x0, noise, t))**2
    nll = self._bound(model, x0, rng_bound, label, self.config.model.bound_timesteps)["total"]
    return {"loss": err.reshape(b, -1).mean(-1), **likelihood.per_example(self.space, nll, self.spec.dims)}

  def log_density(self, state, x, rng):
    """A lower bound on log p(x) in nats (a mass on the 8-bit grid for images), EMA weights."""
    k = self.config.model.log_prob_timesteps
    return -self._bound(self.network(state), self.to_model_space(x), rng, None, k)["total"]

  def sample(self, state, rng, n, cond=None):
    """`n` samples from the EMA model (images in [0, 1]). With `cond["label"]` (int [n]) the
    unconditional and conditional predictions are mixed as u + guidance * (c - u); the sampler,
    its steps and eta are config fields (model.sampler, sample_steps, ddim_eta)."""
    m = self.config.model
    cond = cond or {}
    label = cond.get("label")
    if label is not None and not self.num_classes:
      raise ValueError("this model was trained without labels; sample without a label")
    guidance = jnp.asarray(cond.get("guidance", m.guidance), jnp.float32)
    model = self.network(state)
    rng_init, rng_run = jax.random.split(rng)
    x_T = jax.random.normal(rng_init, (n, *self.spec.shape), jnp.float32)
    predict = self.predictor(model, None if label is None else jnp.broadcast_to(label, (n,)), guidance)
    if m.sampler == "ddpm":
      x = samplers.ddpm_sample(predict, self.sched, x_T, rng_run, variance=m.variance)
    elif m.sampler == "ddim":
      x = samplers.ddim_sample(predict, self.sched, x_T, rng_run, steps=m.sample_steps, eta=m.ddim_eta)
    else:
      raise ValueError(f"unknown sampler {m.sampler!r}; use 'ddim' or 'ddpm'")
    return self.to_data_space(x)

  def default_cond(self, rng, n):
    """Labels cycling over the classes at the config's guidance (a conditional model's grids and FID)."""
    if not self.num_classes:
      return None
    return {"label": jnp.arange(n, dtype=jnp.int32) % self.num_classes,
            "guidance": jnp.float32(self.config.model.guidance)}

  # ---- helpers ------------------------------------------------------------------------------
  def predictor(self, model, label=None, guidance=1.0):
    """`predict(x_t, t) -> (eps, x0)` for the samplers and the bound; with a label the
    guided mixture of the conditional and unconditional outputs (one batched call)."""
    null = self.num_classes

    def predict(xt, t):
      t_in = t * self.time_scale
      if label is None:
        out = model(xt, t_in)
      else:
        both = model(jnp.concatenate([xt, xt]), jnp.concatenate([t_in, t_in]),
                     jnp.concatenate([label, jnp.full_like(label, null)]))
        cond, uncond = jnp.split(both, 2)
        out = uncond + guidance * (cond - uncond)
      return predictions.to_eps_x0(self.sched, self.prediction, xt, t, out, self.clip)

    return predict

  def _train_label(self, batch, rng):
    if not self.num_classes:
      return None
    label = batch["label"].astype(jnp.int32)
    drop = jax.random.uniform(rng, label.shape) < self.config.model.p_uncond
    return jnp.where(drop, self.num_classes, label)

  def _eval_label(self, batch):
    """The bound is reported for the unconditional model p(x) (comparable with other families)
    unless no unconditional branch was trained (p_uncond = 0), then for p(x | label)."""
    if self.num_classes and not self.config.model.p_uncond:
      return batch["label"].astype(jnp.int32)
    return None

  def _bound(self, model, x0, rng, label, num_timesteps):
    return bound.variational_bound(
        self.predictor(model, label), self.sched, x0, rng, num_timesteps=num_timesteps,
        variance=self.config.model.variance, decoder="discretized" if self.images else "gaussian")


@register("ddpm.unet", family="diffusion")
class DDPMUNet(DDPM):
  """DDPM on images with the U-Net of `jgen.nn.unet`; the bound is a mass on the 256 levels."""

  likelihood_space = "discrete_8bit"

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(channels=64, channel_mults=(1, 2, 2), num_res_blocks=2, attention_levels=(1,), num_heads=1,
                   dropout=0.0)
    return d

  @classmethod
  def check_model(cls, model):
    super().check_model(model)
    levels = len(model.channel_mults)
    if any(not 0 <= level < levels for level in model.attention_levels):
      raise ValueError(f"model.attention_levels={tuple(model.attention_levels)}: levels are 0..{levels - 1} "
                       f"(one per entry of model.channel_mults)")
    # Self-attention runs at the attention levels and in the middle block (the last level's width).
    for level in set(model.attention_levels) | {levels - 1}:
      width = model.channels * model.channel_mults[level]
      if width % model.num_heads:
        raise ValueError(f"model.num_heads={model.num_heads}: level {level}'s {width} channels do not split "
                         f"into {model.num_heads} heads")

  def make_networks(self, rngs):
    m = self.config.model
    return {"model": UNet(self.spec.shape[-1], channels=m.channels, channel_mults=tuple(m.channel_mults),
                          num_res_blocks=m.num_res_blocks, attention_levels=tuple(m.attention_levels),
                          num_heads=m.num_heads, dropout=m.dropout, num_classes=self.num_classes,
                          dtype=self.compute_dtype, rngs=rngs)}


@register("ddpm.mlp", family="diffusion")
class DDPMMLP(DDPM):
  """DDPM on low-dimensional points (2-D toy data) with an MLP denoiser."""

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(hidden=256, depth=3)
    return d

  def make_networks(self, rngs):
    m = self.config.model
    return {"model": MLPDenoiser(self.spec.shape[-1], hidden=m.hidden, depth=m.depth, num_classes=self.num_classes,
                                 dtype=self.compute_dtype, rngs=rngs)}
