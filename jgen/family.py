"""The family contract: what every generative model in jgen offers the loop, CLI and evaluator.

Each method is a pure function of pytrees so the loop can jit, shard and donate
it. Networks are Flax NNX modules; a family splits them once into a static
`graphdef` (kept on the family object) and array states (kept in `TrainState`),
and merges them back inside its jitted functions.

Batches are dicts of arrays: `"x"` the data (images as float32 in [0, 1] with
shape [B, H, W, C], points [B, D], token ids [B, T]), `"label"` int32 [B] where
the dataset has labels.
"""

import abc
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from jgen.train.state import TrainState, split_module

Metrics = Mapping[str, jax.Array]


class Family(abc.ABC):
  """A generative model behind one contract.

  Class attributes `branch` and `family` place it in the taxonomy (they are set
  by `jgen.registry.register`). `main_metric` names the number that
  `eval_step` reports and that lower-is-better model selection uses.
  """

  branch: str = ""
  family: str = ""
  main_metric: str = "loss"
  # "min"/"max": which end of `main_metric` is best (the loop keeps the best checkpoint);
  # None where the metric ranks nothing (a GAN's discriminator outputs).
  best_mode: str | None = "min"
  # The train metric that must fall as training works (smoke tests check it).
  progress_metric: str = "loss"

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config

  @abc.abstractmethod
  def init(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> TrainState:
    """Creates the train state (params, optimizer state, extra, step=0)."""

  @abc.abstractmethod
  def train_step(self, state: TrainState, batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    """One update; returns the new state and scalar metrics."""

  def eval_step(self, state: TrainState, batch, rng: jax.Array) -> Metrics:
    """Per-example metrics on a held-out batch, each of shape [B] (the loop averages).

    Defaults to the negative log-likelihood where the family has one.
    """
    nll = -self.log_prob(state, batch["x"])
    return {"nll": nll}

  @abc.abstractmethod
  def sample(self, state: TrainState, rng: jax.Array, n: int, **cond) -> jax.Array:
    """Draws `n` samples in data space (images in [0, 1])."""

  def log_prob(self, state: TrainState, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """Log-likelihood in nats per example, shape [B] (exact or a bound; see `log_prob_kind`).

    A stochastic bound draws its noise from `rng`; callers pass a fresh key per batch, since
    reusing one key makes every batch see the same noise and the split mean no better than one batch's.
    """
    raise NotImplementedError(f"{type(self).__name__} has no likelihood")

  # "exact", "lower_bound", or None where the family has no likelihood.
  log_prob_kind: str | None = None

  def num_params(self, state: TrainState) -> int:
    return sum(x.size for x in jax.tree.leaves(state.params))


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Builds an optax optimizer from an `optim` config block.

  Fields: name (adam, adamw, sgd), lr, b1, b2, weight_decay, grad_clip (0 = off),
  warmup_steps, decay ("constant" or "cosine") with decay_steps.
  """
  if optim.get("warmup_steps", 0) or optim.get("decay", "constant") != "constant":
    decay_steps = max(int(optim.get("decay_steps", 1)), 1)
    if optim.get("decay", "constant") == "cosine":
      lr = optax.warmup_cosine_decay_schedule(0.0, optim.lr, max(optim.get("warmup_steps", 0), 1), decay_steps)
    else:
      lr = optax.linear_schedule(0.0, optim.lr, max(optim.get("warmup_steps", 0), 1))
  else:
    lr = optim.lr
  name = optim.get("name", "adam")
  if name == "adam":
    tx = optax.adam(lr, b1=optim.get("b1", 0.9), b2=optim.get("b2", 0.999))
  elif name == "adamw":
    tx = optax.adamw(lr, b1=optim.get("b1", 0.9), b2=optim.get("b2", 0.999), weight_decay=optim.get("weight_decay", 1e-4))
  elif name == "sgd":
    tx = optax.sgd(lr, momentum=optim.get("momentum", 0.0) or None)
  else:
    raise ValueError(f"unknown optimizer {name!r}")
  if optim.get("grad_clip", 0.0):
    tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip), tx)
  return tx


class LossFamily(Family):
  """A family with one network trained by gradient descent on one loss.

  Subclasses build the network in `make_model(rngs, batch)` and define
  `loss(model, batch, rng) -> (scalar loss, metrics dict)`; `model` is the merged
  NNX module, so the loss reads like ordinary NNX code. Non-parameter state the
  module changes during the loss (batch statistics) is carried in `extra["rest"]`.
  """

  @abc.abstractmethod
  def make_model(self, rngs: nnx.Rngs, batch) -> nnx.Module:
    ...

  @abc.abstractmethod
  def loss(self, model: nnx.Module, batch, rng: jax.Array) -> tuple[jax.Array, dict]:
    ...

  def init(self, rng, batch):
    model = self.make_model(nnx.Rngs(rng), batch)
    self.graphdef, params, rest = split_module(model)
    self.tx = make_optimizer(self.config.optim)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.tx.init(params),
                      extra={"rest": rest})

  def model(self, state: TrainState) -> nnx.Module:
    """The module with the state's parameters (call inside jitted code)."""
    return nnx.merge(self.graphdef, state.params, state.extra["rest"])

  def train_step(self, state, batch, rng):
    def loss_fn(params):
      model = nnx.merge(self.graphdef, params, state.extra["rest"])
      loss, metrics = self.loss(model, batch, rng)
      rest = split_module(model)[2]
      return loss, (metrics, rest)

    (loss, (metrics, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              extra={**state.extra, "rest": rest})
    return new_state, {"loss": loss, **metrics}
