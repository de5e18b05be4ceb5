"""DDPM as a jgen family: the simple loss, an EMA of the weights, DDPM/DDIM sampling with
classifier-free guidance, and the variational bound as the likelihood.

Config (`config.model`): schedule ("linear" | "cosine"), num_steps (T), prediction
("eps" | "v"), variance ("small" | "large": the fixed reverse variance of DDPM
sampling and of the bound), ema_decay, num_classes (0 = unconditional), p_uncond
(label dropout that trains the unconditional branch for guidance), guidance,
sampler ("ddim" | "ddpm"), sample_steps, ddim_eta, bound_timesteps (the bound in
`eval_step`: 0 = all T terms, k = an unbiased k-term estimate), log_prob_timesteps
(the same for `log_prob`, which `jgen evaluate` reports; 0 by default),
compute_dtype ("float32" | "bfloat16"), plus the network's own fields.

Images are scaled from [0, 1] to [-1, 1] on their 8-bit grid (Ho et al.); samples come
back in [0, 1]. Points (toy data) are modelled as they are.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.families.diffusion import bound, predictions, samplers
from jgen.families.diffusion.denoisers import MLPDenoiser
from jgen.families.diffusion.schedules import make_schedule, q_sample
from jgen.family import LossFamily
from jgen.nn.unet import UNet
from jgen.registry import register


class DDPM(LossFamily):
  """Shared logic; subclasses pick the network and the data kind."""

  log_prob_kind = "lower_bound"
  images = False

  def __init__(self, config):
    super().__init__(config)
    m = config.model
    self.sched = make_schedule(m.get("schedule", "linear"), m.get("num_steps", 1000))
    self.prediction = m.get("prediction", "eps")
    self.variance = m.get("variance", "small")
    self.num_classes = m.get("num_classes", 0)
    self.p_uncond = m.get("p_uncond", 0.0)
    self.compute_dtype = jnp.dtype(m.get("compute_dtype", "float32"))
    self.clip = (-1.0, 1.0) if self.images and m.get("clip_x0", True) else None
    # Time enters the network on a 0..1000 scale whatever T is.
    self.time_scale = 1000.0 / self.sched.num_steps
    self._sample_jit = jax.jit(self._sample_arrays, static_argnames=("n", "sampler", "steps"))

  # ---- data <-> model space -------------------------------------------------------------
  def to_model_space(self, x):
    if not self.images:
      return x
    return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0) / 127.5 - 1.0

  def to_data_space(self, x):
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0) if self.images else x

  # ---- the family contract ----------------------------------------------------------------
  def init(self, rng, batch):
    self.data_shape = tuple(batch["x"].shape[1:])
    state = super().init(rng, batch)
    ema = jax.tree.map(jnp.copy, state.params)
    return state.replace(extra={**state.extra, "ema": ema})

  def loss(self, model, batch, rng):
    x0 = self.to_model_space(batch["x"])
    b = x0.shape[0]
    rng_t, rng_noise, rng_drop, rng_label = jax.random.split(rng, 4)
    t = jax.random.randint(rng_t, (b,), 0, self.sched.num_steps)
    noise = jax.random.normal(rng_noise, x0.shape, x0.dtype)
    xt = q_sample(self.sched, x0, t, noise)
    label = self._train_label(batch, rng_label)
    out = model(xt, t * self.time_scale, label, rngs=nnx.Rngs(dropout=rng_drop))
    err = (out - predictions.target(self.sched, self.prediction, x0, noise, t))**2
    return jnp.mean(err), {}

  def train_step(self, state, batch, rng):
    new_state, metrics = super().train_step(state, batch, rng)
    # EMA with a warm-up (decay (1+n)/(10+n) early on) so short runs also get a useful average.
    n = new_state.step.astype(jnp.float32)
    decay = jnp.minimum(self.config.model.get("ema_decay", 0.9999), (1.0 + n) / (10.0 + n))
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.extra["ema"], new_state.params)
    return new_state.replace(extra={**new_state.extra, "ema": ema}), metrics

  def eval_step(self, state, batch, rng):
    """Per-example metrics with the EMA weights: the simple loss at a random t, the bound
    "nll" (nats) and, for images, "bits_per_dim" = nll / (D ln 2) of the 8-bit data."""
    model = self.ema_model(state)
    rng_loss, rng_bound = jax.random.split(rng)
    x0 = self.to_model_space(batch["x"])
    b = x0.shape[0]
    t = jax.random.randint(rng_loss, (b,), 0, self.sched.num_steps)
    noise = jax.random.normal(jax.random.fold_in(rng_loss, 1), x0.shape, x0.dtype)
    xt = q_sample(self.sched, x0, t, noise)
    label = self._eval_label(batch)
    out = model(xt, t * self.time_scale, label)
    err = (out - predictions.target(self.sched, self.prediction, x0, noise, t))**2
    metrics = {"loss": err.reshape(b, -1).mean(-1)}
    nll = self._bound(model, x0, rng_bound, label, self.config.model.get("bound_timesteps", 0))["total"]
    metrics["nll"] = nll
    if self.images:
      metrics["bits_per_dim"] = nll / (math.prod(x0.shape[1:]) * math.log(2.0))
    return metrics

  def log_prob(self, state, x, rng=None):
    """A lower bound on log p(x) in nats (a mass on the 8-bit grid for images), EMA weights."""
    rng = jax.random.key(0) if rng is None else rng
    k = self.config.model.get("log_prob_timesteps", 0)
    return -self._bound(self.ema_model(state), self.to_model_space(x), rng, None, k)["total"]

  def sample(self, state, rng, n, label=None, guidance=None, sampler=None, steps=None, eta=None):
    """`n` samples from the EMA model (images in [0, 1]). With `label` (int or int [n]) the
    unconditional and conditional predictions are mixed as u + guidance * (c - u)."""
    m = self.config.model
    sampler = sampler or m.get("sampler", "ddim")
    steps = int(steps or m.get("sample_steps", 50))
    guidance = m.get("guidance", 1.0) if guidance is None else guidance
    eta = m.get("ddim_eta", 0.0) if eta is None else eta
    if label is not None:
      if not self.num_classes:
        raise ValueError("this model was trained without labels; sample with label=None")
      label = jnp.broadcast_to(jnp.asarray(label, jnp.int32), (n,))
    return self._sample_jit(state.extra["ema"], state.extra["rest"], rng, label,
                            jnp.float32(guidance), jnp.float32(eta), n=n, sampler=sampler, steps=steps)

  # ---- helpers ------------------------------------------------------------------------------
  def ema_model(self, state):
    return nnx.merge(self.graphdef, state.extra["ema"], state.extra["rest"])

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

  def _sample_arrays(self, ema, rest, rng, label, guidance, eta, *, n, sampler, steps):
    model = nnx.merge(self.graphdef, ema, rest)
    rng_init, rng_run = jax.random.split(rng)
    x_T = jax.random.normal(rng_init, (n, *self.data_shape), jnp.float32)
    predict = self.predictor(model, label, guidance)
    if sampler == "ddpm":
      x = samplers.ddpm_sample(predict, self.sched, x_T, rng_run, variance=self.variance)
    elif sampler == "ddim":
      x = samplers.ddim_sample(predict, self.sched, x_T, rng_run, steps=steps, eta=eta)
    else:
      raise ValueError(f"unknown sampler {sampler!r}; use 'ddim' or 'ddpm'")
    return self.to_data_space(x)

  def _train_label(self, batch, rng):
    if not self.num_classes:
      return None
    label = batch["label"].astype(jnp.int32)
    drop = jax.random.uniform(rng, label.shape) < self.p_uncond
    return jnp.where(drop, self.num_classes, label)

  def _eval_label(self, batch):
    """The bound is reported for the unconditional model p(x) (comparable with other families)
    unless no unconditional branch was trained (p_uncond = 0), then for p(x | label)."""
    if self.num_classes and not self.p_uncond:
      return batch["label"].astype(jnp.int32)
    return None

  def _bound(self, model, x0, rng, label, num_timesteps):
    return bound.variational_bound(
        self.predictor(model, label), self.sched, x0, rng, num_timesteps=num_timesteps, variance=self.variance,
        decoder="discretized" if self.images else "gaussian")


@register("ddpm.unet", family="diffusion")
class DDPMUNet(DDPM):
  """DDPM on images with the U-Net of `jgen.nn.unet`."""

  images = True
  main_metric = "bits_per_dim"
  likelihood_space = "discrete_8bit"

  def make_model(self, rngs, batch):
    m = self.config.model
    return UNet(batch["x"].shape[-1], channels=m.channels, channel_mults=tuple(m.channel_mults),
                num_res_blocks=m.num_res_blocks, attention_levels=tuple(m.attention_levels),
                num_heads=m.get("num_heads", 1), dropout=m.get("dropout", 0.0), num_classes=self.num_classes,
                dtype=self.compute_dtype, rngs=rngs)


@register("ddpm.mlp", family="diffusion")
class DDPMMLP(DDPM):
  """DDPM on low-dimensional points (2-D toy data) with an MLP denoiser."""

  main_metric = "loss"
  likelihood_space = "continuous"

  def make_model(self, rngs, batch):
    m = self.config.model
    return MLPDenoiser(batch["x"].shape[-1], hidden=m.get("hidden", 256), depth=m.get("depth", 3),
                       num_classes=self.num_classes, dtype=self.compute_dtype, rngs=rngs)
