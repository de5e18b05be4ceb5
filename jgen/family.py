"""The family contract: what every model in jgen offers the loop, the CLI and the evaluator.

A `Model` is anything the one loop trains: built as `Model(config, spec)` from its
config and the `DataSpec` of its dataset, holding no state of its own. Its
networks' graphdefs come from the spec (`nnx.eval_shape`, no arrays), so every
method works on a fresh object and a restored `TrainState`. Every method is a
pure function of pytrees, so the loop can jit, shard and donate it.

A `Family` is a generative `Model`: it samples, and it declares what else it
offers (a likelihood, latents, importance weights, conditions); the evaluator
and the CLI read those declarations and never branch on a family's name.

Batches are dicts: `"x"` the data as `jgen.data.spec.to_model_input` gives it
(images float32 in [0, 1] [B, H, W, C], points float32 [B, D], token ids int32
[B, T]) and `"label"` int32 [B]. With `train.batches_per_step = k > 1` the
train step gets every array stacked as [k, B, ...].
"""

import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from jgen import config_schema
from jgen.data.spec import DataSpec
from jgen.eval import likelihood
from jgen.nn import precision
from jgen.nn import rngs as rngs_lib
from jgen.train import optim as optim_lib
from jgen.train.state import TrainState, batch_stats, merge_network, split_network

Metrics = Mapping[str, jax.Array]
LIKELIHOOD_KINDS = (None, "exact", "lower_bound")


class Model:
  """A model the loop trains. Gradient-trained models write `make_networks` and `loss`;
  models fitted otherwise (EM) override `init` and `train_step`.

  Class attributes (`branch`, `family` are set by `jgen.registry.register`):
  main_metric: the number model selection ranks, among `eval_step`'s keys or an in-loop evaluator's;
  best_mode: "min" / "max" (which end is best), None where nothing ranks checkpoints;
  progress_metric: the train metric that falls as training works (the smoke tests check it);
  choices: the allowed values of the model block's string options, checked when a config loads
  (with `check_model`, for rules that tie several fields together);
  mixed_precision: True where every network honours `model.dtype` (jgen.nn.precision: "bfloat16" computes
  in bfloat16, parameters and optimizer state stay float32); only such models have the field.
  """

  branch: str = ""
  family: str = ""
  generative: bool = False
  main_metric: str = "loss"
  best_mode: str | None = "min"
  progress_metric: str = "loss"
  choices: dict[str, tuple] = {}
  mixed_precision: bool = False
  # Buffers (keys of TrainState.buffers) split over the devices along their first axis instead of replicated.
  data_sharded_buffers: tuple[str, ...] = ()

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    if cls.mixed_precision and "dtype" not in cls.choices:  # the one declaration brings the field's choices
      cls.choices = {**cls.choices, "dtype": precision.DTYPES}

  def __init__(self, config: ml_collections.ConfigDict, spec: DataSpec):
    self.config = config
    self.spec = spec
    # What the networks compute in (float32 for a model without the field).
    self.compute_dtype = precision.compute_dtype(config.model.get("dtype", "float32") if self.mixed_precision
                                                 else "float32")

  # ---- what a model defines ------------------------------------------------------------------
  @classmethod
  def defaults(cls) -> ml_collections.ConfigDict:
    """The model's config blocks with every field's default: `model`, and `optim` where it trains by gradients."""
    model = {"name": "", **({"dtype": "float32"} if cls.mixed_precision else {})}
    return ml_collections.ConfigDict({"model": model, "optim": dict(config_schema.OPTIM)})

  @classmethod
  def check_model(cls, model: ml_collections.ConfigDict) -> None:
    """Raises ValueError("model.FIELD=VALUE: what it must be") where fields of the `model` block do not fit
    together; checked when a config loads, after the ranges and choices of jgen.config_checks."""

  def make_networks(self, rngs: nnx.Rngs) -> dict[str, nnx.Module]:
    """The NNX networks, by name ("model" for one), shaped from `self.spec`; {} for models without one."""
    return {}

  def loss(self, model: nnx.Module, batch, rng: jax.Array) -> tuple[jax.Array, dict]:
    """(scalar loss, metrics) of a one-network model, `model` its network with the weights being trained;
    the default `train_step` differentiates it."""
    raise NotImplementedError(f"{type(self).__name__} defines neither loss nor train_step")

  def step_loss(self, model: nnx.Module, batch, rng: jax.Array, step: jax.Array) -> tuple[jax.Array, dict]:
    """`loss` at training step `step` (a traced int), for objectives with a schedule (a KL warm-up); default:
    `loss`, which does not depend on the step."""
    return self.loss(model, batch, rng)

  def eval_step(self, state: TrainState, batch, rng: jax.Array) -> Metrics:
    """Per-example metrics on a held-out batch, each of shape [B] (the loop averages them)."""
    raise NotImplementedError(f"{type(self).__name__} defines no eval_step")

  # ---- networks --------------------------------------------------------------------------------
  @functools.cached_property
  def graphdefs(self) -> dict:
    """Each network's static structure, traced from the spec without creating any array."""
    abstract = nnx.eval_shape(lambda: self.make_networks(rngs_lib.Rngs(0)))
    return {name: split_network(net)[0] for name, net in abstract.items()}

  @functools.cached_property
  def optimizers(self) -> dict[str, optax.GradientTransformation]:
    return {name: optim_lib.make_optimizer(self.optim_config(name)) for name in self.graphdefs}

  def optim_config(self, name: str) -> ml_collections.ConfigDict:
    """The `optim` block of network `name`: `optim.<name>` where the model has several, else `optim`."""
    optim = self.config.optim
    return optim[name] if name in optim and isinstance(optim[name], ml_collections.ConfigDict) else optim

  def network(self, state: TrainState, name: str = "model", *, ema: bool = True) -> nnx.Module:
    """Network `name` with the state's weights (its EMA where kept and `ema`); call inside jitted code."""
    params = state.inference_params(name) if ema else state.params[name]
    return merge_network(self.graphdefs[name], params, state.model_state[name])

  # ---- training --------------------------------------------------------------------------------
  def init(self, rng: jax.Array, batch) -> TrainState:
    """Fresh networks, optimizer states and (where `optim.ema_decay` > 0) EMA copies; step 0."""
    params, opt_state, ema, model_state = {}, {}, {}, {}
    for name, net in self.make_networks(rngs_lib.Rngs(rng)).items():
      _, params[name], model_state[name] = split_network(net)
      opt_state[name] = self.optimizers[name].init(params[name])
      if self.optim_config(name).ema_decay > 0:
        ema[name] = jax.tree.map(jnp.copy, params[name])
    return TrainState.create(params, opt_state, ema, model_state)

  def apply_gradients(self, state: TrainState, name: str, grads, model_state=None) -> TrainState:
    """One optimizer update of network `name` (and its EMA); the step counter is `train_step`'s."""
    return optim_lib.apply_gradients(state, name, grads, self.optimizers[name], self.optim_config(name).ema_decay,
                                     model_state)

  def train_step(self, state: TrainState, batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    """One update of the one network on `loss`. Stacked batches [k, B, ...] are one batch of k * B."""
    batch = merge_stacked(batch, self.config.train.batches_per_step)

    def loss_fn(params):
      model = merge_network(self.graphdefs["model"], params, state.model_state["model"])
      loss, metrics = self.step_loss(model, batch, rng, state.step)
      return loss, (metrics, batch_stats(model))

    (loss, (metrics, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["model"])
    state = self.apply_gradients(state, "model", grads, stats)
    return state.replace(step=state.step + 1), {"loss": loss, **metrics}

  def with_overrides(self, *overrides: str) -> "Model":
    """The same model with `key=value` config overrides (e.g. a sampler's steps); states stay compatible
    as long as the overridden fields do not shape the networks."""
    from jgen import config as config_lib

    config = self.config.copy_and_resolve_references()
    config_lib.apply_overrides(config, overrides)
    return type(self)(config, self.spec)

  def num_params(self, state: TrainState) -> int:
    return sum(x.size for x in jax.tree.leaves(state.params))


class Family(Model):
  """A generative model behind one contract.

  Declared capabilities (class attributes; the registry checks each is backed by its method):
  likelihood: "exact" | "lower_bound" | None, through `log_prob(state, x, rng)`;
  likelihood_space: how that likelihood measures images ("continuous_unit", "discrete_8bit",
    "binary"); None follows the data's own space (`spec.likelihood_space`);
  latents: True for `encode(state, x)` / `decode(state, z)`, "decode" for a generator that only decodes
    (a GAN's z); `embed(state, x)` gives one latent point [B, d] per example whatever `encode` returns;
  latent_type: "continuous", or "discrete" where z is a component index (a mixture; encode gives its posterior);
  latent_prior: "gaussian" where z ~ N(0, I) a priori (spherical interpolation applies), else None;
  latent_conditions: the keys of `cond` that encode / decode take (a conditional VAE's label);
  importance_weights: `log_importance_weights(state, x, rng, k)` for the IWAE estimate;
  conditions: the keys of `cond` that `sample` reads (e.g. ("label", "guidance")).
  """

  generative = True
  likelihood: str | None = None
  likelihood_space: str | None = None
  likelihood_samples: int | None = None  # Monte Carlo draws per example of a stochastic bound
  latents: bool | str = False
  latent_type = "continuous"
  latent_prior: str | None = None
  latent_conditions: tuple[str, ...] = ()
  importance_weights = False
  conditions: tuple[str, ...] = ()
  # Static sampler settings `jgen sample --kw NAME=VALUE` may change: option name -> config field.
  sample_options: dict[str, str] = {}

  def __init__(self, config, spec):
    super().__init__(config, spec)
    self.space = self.likelihood_space or spec.likelihood_space
    if spec.kind != "image" and self.space in ("discrete_8bit", "binary"):
      raise ValueError(f"{type(self).__name__} models images; the dataset holds {spec.kind}")

  @property
  def main_metric(self) -> str:
    """Bits/dim where the space defines it, else nll; a family without a likelihood names its own."""
    return "bits_per_dim" if self.space in likelihood.BITS_PER_DIM_SPACES else "nll"

  # ---- sampling ---------------------------------------------------------------------------------
  def sample(self, state: TrainState, rng: jax.Array, n: int, cond: dict | None = None) -> jax.Array:
    """`n` samples in data space (images in [0, 1]); `cond` a dict of arrays (labels [n], guidance)."""
    raise NotImplementedError(f"{type(self).__name__} defines no sample")

  def default_cond(self, rng: jax.Array, n: int) -> dict | None:
    """The conditions of sample grids and FID: labels cycling over the classes for a label-conditional family."""
    if "label" in self.conditions and self.spec.num_classes:
      return {"label": jnp.arange(n, dtype=jnp.int32) % self.spec.num_classes}
    return None

  # ---- latents ----------------------------------------------------------------------------------------
  def embed(self, state: TrainState, x: jax.Array, cond: dict | None = None) -> jax.Array:
    """One latent point [B, d] per example: `encode`'s posterior mean where it gives (mean, spread), its
    responsibilities [B, K] for a discrete latent. `cond` reaches `encode` for `latent_conditions`."""
    out = self.encode(state, x, cond) if self.latent_conditions else self.encode(state, x)
    return out[0] if isinstance(out, tuple) else out

  # ---- likelihood --------------------------------------------------------------------------------
  def prepare_data(self, x: jax.Array, rng: jax.Array) -> jax.Array:
    """Loader data -> the likelihood space's data (dequantized / binarized with `rng`): the one place it happens."""
    return likelihood.prepare(self.space, x, rng)

  def log_prob(self, state: TrainState, x: jax.Array, rng: jax.Array) -> jax.Array:
    """log p(x) in nats per example [B] of data as the loader gives it (exact or a bound: `likelihood`).

    A stochastic bound draws its noise from `rng`; give every batch its own key.
    """
    prep_rng, rng = jax.random.split(rng)
    return self.log_density(state, self.prepare_data(x, prep_rng), rng)

  def log_density(self, state: TrainState, x: jax.Array, rng: jax.Array) -> jax.Array:
    """log p of data already in the likelihood space, nats per example [B]."""
    raise NotImplementedError(f"{type(self).__name__} declares no likelihood")

  def eval_step(self, state, batch, rng):
    """nll in nats per example and, for images, bits/dim in the family's likelihood space."""
    nll = -self.log_prob(state, batch["x"], rng)
    return likelihood.per_example(self.space, nll, self.spec.dims)


def merge_stacked(batch, k: int):
  """Stacked batches [k, B, ...] -> one batch [k * B, ...] (the same examples, in order)."""
  if k == 1:
    return batch
  return jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), batch)


def capability_errors(cls) -> list[str]:
  """Declared capabilities without the method that backs them (checked at registration)."""
  errors = []
  if cls.likelihood not in LIKELIHOOD_KINDS:
    errors.append(f"likelihood must be one of {LIKELIHOOD_KINDS}, got {cls.likelihood!r}")
  if cls.likelihood and cls.log_density is Family.log_density and cls.log_prob is Family.log_prob:
    errors.append("declares a likelihood but defines no log_density")
  if cls.latents not in (False, True, "decode"):
    errors.append(f"latents must be False, True or \"decode\", got {cls.latents!r}")
  has = {name: callable(getattr(cls, name, None)) for name in ("encode", "decode")}
  if cls.latents is True and not (has["encode"] and has["decode"]):
    errors.append("declares latents but defines no encode/decode")
  if cls.latents == "decode" and not has["decode"]:
    errors.append('declares latents="decode" but defines no decode')
  if cls.latent_type not in ("continuous", "discrete"):
    errors.append(f"latent_type must be \"continuous\" or \"discrete\", got {cls.latent_type!r}")
  if cls.importance_weights and not callable(getattr(cls, "log_importance_weights", None)):
    errors.append("declares importance_weights but defines no log_importance_weights")
  if cls.sample is Family.sample:
    errors.append("defines no sample")
  return errors
