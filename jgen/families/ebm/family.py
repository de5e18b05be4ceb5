"""`ebm.langevin`: an energy-based model p(x) = exp(-E(x)) / Z trained by contrastive divergence.

Each train step starts a batch of negatives from the replay buffer (or, with
probability `reinit_prob`, from uniform noise), refines them by `langevin_steps`
of Langevin dynamics under the current energy, writes them back, and lowers the
energy of the data while raising that of the negatives:

  loss = mean E(x+) - mean E(x-) + alpha * mean(E(x+)^2 + E(x-)^2),

the second term keeping the energies near zero (the gradient of the first is the
maximum-likelihood gradient when x- ~ p). Z is never computed, so the family
declares no likelihood; it offers `score(state, x) = -E(x)`, an unnormalised
log-density for ranking examples (outlier detection). On 2-D points the eval
step also reports "nll_quadrature": -log p with Z summed on a grid over the box
the model lives on (jgen.families.ebm.quadrature), exact up to the grid's error.

Config (`config.model`), defaults from the book (Foster, Generative Deep Learning, ch. 7):
channels, hidden (the CNN's; for points an MLP of `depth` layers of `hidden`), spectral_norm,
alpha (0.1), data_noise (0.005, Gaussian noise on the positives), buffer_size (8192),
reinit_prob (0.05), langevin_steps (60), step_size (10), noise (0.005), grad_clip (0.03 per
coordinate), data_range ((-1, 1): images are mapped from [0, 1] onto it; for points the box
Langevin clamps to), sample_steps and sample_init ("noise" | "buffer") of `sample`,
quadrature_resolution (the 2-D grid), dtype (the energy network's compute dtype, jgen.nn.precision: the
energies, the loss, Langevin's chains and the buffer stay float32). Adam with lr 1e-4, b1 = 0 (the book's).
"""

import jax
import jax.numpy as jnp

from jgen.families.ebm import quadrature, replay
from jgen.families.ebm.energy import ConvEnergy, MLPEnergy
from jgen.families.ebm.langevin import langevin
from jgen.family import Family, merge_stacked
from jgen.nn.spectral_norm import update_spectral_norms
from jgen.registry import register
from jgen.train.state import batch_stats, merge_network

BUFFER = "replay"


@register("ebm.langevin", family="energy-based")
class LangevinEBM(Family):
  mixed_precision = True
  data_sharded_buffers = (BUFFER,)
  choices = {"sample_init": ("noise", "buffer")}
  sample_options = {"steps": "model.sample_steps", "init": "model.sample_init"}

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(channels=(16, 32, 64, 64), hidden=64, depth=3, spectral_norm=False, alpha=0.1, data_noise=0.005,
                   buffer_size=8192, reinit_prob=0.05, langevin_steps=60, step_size=10.0, noise=0.005,
                   grad_clip=0.03, data_range=(-1.0, 1.0), sample_steps=1000, sample_init="noise",
                   quadrature_resolution=256)
    d.optim.update(lr=1e-4, b1=0.0, b2=0.999)
    return d

  @classmethod
  def check_model(cls, model):
    for field in ("alpha", "data_noise", "noise", "grad_clip"):
      if not model[field] >= 0:
        raise ValueError(f"model.{field}={model[field]}: must be >= 0")
    if not model.step_size > 0:
      raise ValueError(f"model.step_size={model.step_size}: must be > 0 (e.g. 10)")
    if not 0 <= model.reinit_prob <= 1:
      raise ValueError(f"model.reinit_prob={model.reinit_prob}: must be in [0, 1] (e.g. 0.05)")
    if model.buffer_size < 1:
      raise ValueError(f"model.buffer_size={model.buffer_size}: must be >= 1 (e.g. 8192)")
    if len(model.data_range) != 2 or not model.data_range[0] < model.data_range[1]:
      raise ValueError(f"model.data_range={tuple(model.data_range)}: give (low, high) with low < high")
    if model.quadrature_resolution < 2:
      raise ValueError(f"model.quadrature_resolution={model.quadrature_resolution}: must be >= 2 (e.g. 256)")

  def __init__(self, config, spec):
    super().__init__(config, spec)
    if spec.kind not in ("image", "points"):
      raise ValueError(f"ebm.langevin models images or points; the dataset holds {spec.kind}")
    m = config.model
    self.low, self.high = (float(v) for v in m.data_range)
    self.batch_size = config.data.batch_size * config.train.batches_per_step
    if m.buffer_size % self.batch_size:
      raise ValueError(f"model.buffer_size={m.buffer_size} must be a multiple of the batch size "
                       f"{self.batch_size} (each example has its own row of the buffer), e.g. "
                       f"{max(m.buffer_size // self.batch_size, 1) * self.batch_size}")

  # ---- what ranks checkpoints --------------------------------------------------------------------
  @property
  def main_metric(self):
    """The quadrature nll on 2-D points; FID-FMNIST where the loop computes it; else the data's energy (unranked)."""
    if self.spec.kind == "points" and self.spec.dims == 2:
      return "nll_quadrature"
    return "fid_fmnist" if "fid" in self.config.train.evals else "energy"

  @property
  def best_mode(self):
    return None if self.main_metric == "energy" else "min"

  # ---- networks and spaces -----------------------------------------------------------------------
  def make_networks(self, rngs):
    m = self.config.model
    if self.spec.is_image:
      return {"model": ConvEnergy(self.spec.shape, tuple(m.channels), m.hidden, m.spectral_norm,
                                  dtype=self.compute_dtype, rngs=rngs)}
    return {"model": MLPEnergy(self.spec.dims, m.hidden, m.depth, m.spectral_norm, dtype=self.compute_dtype,
                               rngs=rngs)}

  def to_model_space(self, x):
    """Images [0, 1] -> data_range; points as they are."""
    return self.low + (self.high - self.low) * x if self.spec.is_image else x

  def to_data_space(self, x):
    return (x - self.low) / (self.high - self.low) if self.spec.is_image else x

  def _energy_fn(self, params, stats):
    """x -> E(x) [B] with these weights; the network is rebuilt at every call (each a pure function)."""
    return lambda x: merge_network(self.graphdefs["model"], params, stats)(x)

  def _inference_energy(self, state):
    return self._energy_fn(state.inference_params("model"), state.model_state["model"])

  def _langevin(self, energy_fn, x, rng, steps):
    m = self.config.model
    return langevin(energy_fn, x, rng, steps=steps, step_size=m.step_size, noise=m.noise, grad_clip=m.grad_clip,
                    bounds=(self.low, self.high))

  def init(self, rng, batch):
    net_rng, buffer_rng = jax.random.split(rng)
    state = super().init(net_rng, batch)
    buffer = replay.init(buffer_rng, self.config.model.buffer_size, self.spec.shape, self.low, self.high)
    return state.replace(buffers={BUFFER: buffer})

  # ---- training ----------------------------------------------------------------------------------
  def train_step(self, state, batch, rng):
    m = self.config.model
    batch = merge_stacked(batch, self.config.train.batches_per_step)
    noise_rng, draw_rng, sgld_rng = jax.random.split(rng, 3)
    x_pos = self.to_model_space(batch["x"])
    x_pos = jnp.clip(x_pos + m.data_noise * jax.random.normal(noise_rng, x_pos.shape), self.low, self.high)
    params = state.params["model"]
    # The spectral norms' power iteration advances once, from the weights this step starts with.
    net = merge_network(self.graphdefs["model"], params, state.model_state["model"])
    update_spectral_norms(net)
    stats = batch_stats(net)

    start, age, slots = replay.draw(state.buffers[BUFFER], draw_rng, x_pos.shape[0], m.reinit_prob, self.low,
                                    self.high)
    x_neg = self._langevin(self._energy_fn(params, stats), start, sgld_rng, m.langevin_steps)
    buffer = replay.write(state.buffers[BUFFER], slots, x_neg, age + 1)

    def loss_fn(p):
      # Two calls, not one on the concatenation: each batch stays split over the devices as it is.
      energy = self._energy_fn(p, stats)
      e_pos, e_neg = energy(x_pos), energy(x_neg)
      cd = jnp.mean(e_pos) - jnp.mean(e_neg)
      reg = m.alpha * jnp.mean(e_pos**2 + e_neg**2)
      return cd + reg, (e_pos, e_neg, cd)

    (loss, (e_pos, e_neg, cd)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    state = self.apply_gradients(state, "model", grads, stats)
    state = state.replace(step=state.step + 1, buffers={**state.buffers, BUFFER: buffer})
    metrics = {"loss": loss, "cd": cd, "energy_pos": jnp.mean(e_pos), "energy_neg": jnp.mean(e_neg),
               "energy_gap": jnp.mean(e_neg) - jnp.mean(e_pos), "buffer_age": jnp.mean(age + 1),
               "buffer_age_all": jnp.mean(buffer["age"])}
    return state, metrics

  # ---- evaluation ----------------------------------------------------------------------------------
  def energy(self, state, x):
    """E(x) [B] of data as the loader gives it (images in [0, 1]), EMA weights where kept."""
    return self.network(state)(self.to_model_space(x))

  def score(self, state, x):
    """-E(x) [B]: the unnormalised log-density log p(x) + log Z (higher = more typical of the training data)."""
    return -self.energy(state, x)

  def log_normaliser_2d(self, state):
    """log Z over the data_range box by grid quadrature (2-D points only)."""
    return quadrature.log_normaliser(self._inference_energy(state), self.low, self.high,
                                     self.config.model.quadrature_resolution)

  def eval_step(self, state, batch, rng):
    """The energy of held-out data and of uniform noise; on 2-D points the quadrature nll in nats."""
    energy = self.energy(state, batch["x"])
    noise = jax.random.uniform(rng, batch["x"].shape, jnp.float32, self.low, self.high)
    out = {"energy": energy, "energy_noise": self.network(state)(noise)}
    if self.spec.kind == "points" and self.spec.dims == 2:
      out["nll_quadrature"] = energy + self.log_normaliser_2d(state)
    return out

  # ---- sampling --------------------------------------------------------------------------------------
  def sample(self, state, rng, n, cond=None):
    """`n` samples by `sample_steps` of Langevin under the energy (EMA weights where kept), started from
    uniform noise or (sample_init="buffer") from entries of the replay buffer; images in [0, 1]."""
    m = self.config.model
    start_rng, sgld_rng = jax.random.split(rng)
    if m.sample_init == "buffer":
      size = m.buffer_size
      idx = jax.random.choice(start_rng, size, (n,), replace=n > size)
      x = state.buffers[BUFFER]["x"][idx]
    else:
      x = jax.random.uniform(start_rng, (n, *self.spec.shape), jnp.float32, self.low, self.high)
    x = self._langevin(self._inference_energy(state), x, sgld_rng, m.sample_steps)
    return self.to_data_space(x)
