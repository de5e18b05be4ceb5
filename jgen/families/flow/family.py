"""What every flow offers the loop: an exact log-likelihood by change of variables, sampling at a temperature,
and exact latents (encode / decode are the flow and its inverse).

A flow network (`jgen.nn.flows.multiscale.FlowNet`) maps data to a flat latent z [B, D] with prior N(0, I), or
N(mean_y, I) with a learned mean per class (`label_conditional`). Images are uniformly dequantized as the
evaluation convention says (density on [0, 1]^D, bits/dim = nll / (D ln 2) + 8, every Jacobian of the
preprocessing counted), or through a learned q(u | k) (`dequantization = "variational"`: then the number is
a one-draw estimate of a bound, `likelihood = "lower_bound"`); 2-D points are modelled as given (nats).
ActNorm layers are initialised from the batch `init` receives, and never again.

model: num_scales (images: levels, half the channels factored out after each but the last; points: 1),
num_steps (flow steps per scale: its subclass says which), features / num_blocks (the coupling networks:
conv channels and residual blocks for images, hidden units and layers for points), coupling
("affine" | "additive"), scale ("sigmoid" | "tanh"), actnorm, learned_split_prior (Glow's conditional prior
of the factored halves), preprocess ("logit" | "center", images), logit_alpha, dequantization
("uniform" | "variational"), deq_steps / deq_features (the dequantizer's couplings), label_conditional,
temperature (of sampling: the latent's standard deviation), dtype (jgen.nn.precision: the coupling networks'
compute dtype; the affine maps, every log-determinant, ActNorm, the 1x1 convolutions and the priors stay
float32).

In bfloat16 each coupling still inverts exactly (its network recomputes the same outputs from the same kept
half), and a shallow flow inverts to float32 round-off (tests/test_mixed_precision.py). A deep one does not
quite: float32 round-off in the inverse of the other layers can move a coupling network's input across a
bfloat16 rounding step, a jump of ~2^-8 that the layers below spread. On the cpu Glow (2 x 8 steps, random
weights) decode(encode(x)) is off by up to 1.3e-3 on 16% of the pixels, against 7e-7 in float32; use float32
where encode / decode must round-trip exactly.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.eval import likelihood
from jgen.family import Family
from jgen.nn.flows.base import Identity
from jgen.nn.flows.coupling import KINDS, SCALES
from jgen.nn.flows.dequantize import DEQUANTIZATIONS, VariationalDequantizer
from jgen.nn.flows.logit import PREPROCESSING, preprocessing
from jgen.nn.flows.multiscale import FlowNet, log_normal
from jgen.nn import rngs as rngs_lib
from jgen.train.state import TrainState, split_network


class FlowFamily(Family):
  likelihood = "exact"
  latents = True
  latent_prior = "gaussian"  # z = f(x) ~ N(mean_y, I)
  mixed_precision = True
  conditions = ("label",)
  sample_options = {"temperature": "model.temperature"}
  choices = {"coupling": KINDS, "scale": SCALES, "preprocess": PREPROCESSING, "dequantization": DEQUANTIZATIONS}

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(num_scales=2, num_steps=4, features=64, num_blocks=1, coupling="affine", scale="sigmoid",
                   actnorm=True, learned_split_prior=True, preprocess="logit", logit_alpha=0.05,
                   dequantization="uniform", deq_steps=4, deq_features=32, label_conditional=False, temperature=1.0)
    return d

  @classmethod
  def check_model(cls, model):
    if not 0.0 < model.logit_alpha < 0.5:
      raise ValueError(f"model.logit_alpha={model.logit_alpha}: must be in (0, 0.5) (logit of alpha + (1 - 2 alpha) x)")

  def __init__(self, config, spec):
    super().__init__(config, spec)
    m = config.model
    name = type(self).__name__
    if spec.kind not in ("image", "points"):
      raise ValueError(f"{name} models images or points; the dataset holds {spec.kind}")
    self.is_image = spec.kind == "image"
    if not self.is_image and m.num_scales != 1:
      raise ValueError(f"model.num_scales={m.num_scales}: points have one scale; set model.num_scales=1")
    if not self.is_image and m.dequantization != "uniform":
      raise ValueError(f"model.dequantization={m.dequantization}: dequantization is for 8-bit images; points "
                       f"are modelled as given (leave it 'uniform')")
    if not self.is_image and spec.shape[-1] < 2:
      raise ValueError(f"{name} couples halves of a point; the dataset's points have {spec.shape[-1]} coordinate")
    if m.label_conditional and not spec.num_classes:
      raise ValueError("model.label_conditional needs a dataset with labels")
    self.num_classes = spec.num_classes if m.label_conditional else 0
    # The coupling networks' compute dtype; None in float32, where they follow the flow's own dtype (float64
    # too: the exactness tests run whole flows in float64).
    self.net_dtype = None if self.compute_dtype == jnp.float32 else self.compute_dtype
    if m.dequantization == "variational":
      self.likelihood, self.likelihood_samples = "lower_bound", 1
    self.check_shape()

  # ---- what a flow architecture defines -------------------------------------------------------------------
  def check_shape(self) -> None:
    """Raises ValueError where the data's shape does not fit the architecture (image sides and squeezes)."""

  def build_levels(self, rngs: nnx.Rngs):
    """([Level], latent shapes: the factored parts in order, then the last level's output)."""
    raise NotImplementedError

  def make_networks(self, rngs):
    m = self.config.model
    levels, shapes = self.build_levels(rngs)
    pre = preprocessing(m.preprocess, m.logit_alpha) if self.is_image else Identity()
    deq = (VariationalDequantizer(self.spec.shape, m.deq_steps, m.deq_features, dtype=self.net_dtype,
                                  rngs=rngs) if m.dequantization == "variational" else None)
    return {"model": FlowNet(pre, levels, shapes, num_classes=self.num_classes, dequantizer=deq, rngs=rngs)}

  def init(self, rng, batch):
    """Fresh networks whose ActNorm layers are set from `batch` (uniformly dequantized images, or points)."""
    net_rng, data_rng = jax.random.split(rng)
    net = self.make_networks(rngs_lib.Rngs(net_rng))["model"]
    net.initialize(self.prepare_data(batch["x"], data_rng))
    _, params, stats = split_network(net)
    params, model_state = {"model": params}, {"model": stats}
    opt_state = {"model": self.optimizers["model"].init(params["model"])}
    ema = {"model": jax.tree.map(jnp.copy, params["model"])} if self.optim_config("model").ema_decay > 0 else {}
    return TrainState.create(params, opt_state, ema, model_state)

  # ---- likelihood ---------------------------------------------------------------------------------------------
  def _labels(self, labels):
    return labels if self.num_classes else None

  def _log_prior(self, model, z, labels):
    if not self.num_classes:
      return log_normal(z)
    if labels is not None:
      return log_normal(z, model.prior_mean(labels, z.shape[0], z.dtype))
    # No label given: p(z) = mean over the classes of N(z; mean_y, I), the label marginalised (uniformly).
    per_class = jax.vmap(lambda mean: log_normal(z, mean))(model.class_mean.embedding[...].astype(z.dtype))
    return jax.nn.logsumexp(per_class, axis=0) - math.log(self.num_classes)

  def _log_density(self, model, x, labels=None):
    z, logdet = model.forward(x)
    return self._log_prior(model, z, labels) + logdet

  def _log_p(self, model, x, rng, labels=None):
    """log p of data as the loader gives it: images dequantized (uniformly, or by q with log q subtracted)."""
    if model.dequantizer is not None:
      x, log_q = model.dequantizer(x, rng)
      return self._log_density(model, x, labels) - log_q
    return self._log_density(model, self.prepare_data(x, rng), labels)

  def loss(self, model, batch, rng):
    nll = -self._log_p(model, batch["x"], rng, self._labels(batch["label"]))
    metrics = {"nll": jnp.mean(nll)}
    if self.is_image:
      metrics["bits_per_dim"] = jnp.mean(likelihood.dequantized_bits_per_dim(nll, self.spec.dims))
    return jnp.mean(nll), metrics

  def log_prob(self, state, x, rng):
    """log p(x) [B] of loader data; a label-conditional flow's p(x) marginalises the label."""
    return self._log_p(self.network(state), x, rng)

  def log_density(self, state, x, rng, labels=None):
    """log p of data already in the likelihood space (dequantized images in [0, 1], points), exact."""
    return self._log_density(self.network(state), x, self._labels(labels))

  # ---- latents and sampling -------------------------------------------------------------------------------
  def encode(self, state, x):
    """The latent z [B, D] of x (images in [0, 1] as given, no dequantization noise), exact."""
    return self.network(state).forward(x)[0]

  def decode(self, state, z):
    """The data of latent z [B, D] (images unclipped, so decode(encode(x)) == x)."""
    return self.network(state).inverse(z)

  def default_cond(self, rng, n):
    return super().default_cond(rng, n) if self.num_classes else None

  def sample(self, state, rng, n, cond=None, temperature=None):
    """`n` samples: z = mean_y + temperature * eps, x = f^-1(z); images clipped to [0, 1]. `temperature`
    (default `model.temperature`) may be 0: the decoded mean latent."""
    label = (cond or {}).get("label")
    if label is not None and not self.num_classes:
      raise ValueError("this model was trained without labels; sample without a label")
    if label is not None:
      label = jnp.broadcast_to(jnp.asarray(label, jnp.int32), (n,))
    elif self.num_classes:
      label = jnp.arange(n, dtype=jnp.int32) % self.num_classes
    t = self.config.model.temperature if temperature is None else temperature
    model = self.network(state)
    z = model.prior_mean(label, n) + t * jax.random.normal(rng, (n, model.dim))
    x = model.inverse(z)
    return jnp.clip(x, 0.0, 1.0) if self.is_image else x
