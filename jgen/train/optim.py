"""Optimizers from `optim` config blocks, and the one update every gradient-trained network goes through.

An `optim` block (defaults in jgen.config_schema.OPTIM) names the optimizer and its
schedule; `ema_decay > 0` also keeps an exponential moving average of the network's
weights in `TrainState.ema`, which sampling and evaluation then use. A family with
several networks gives one block per network (`optim.gen`, `optim.disc`).
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jgen.train.state import TrainState


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """optax optimizer of one `optim` block: name (adam, adamw, sgd), lr, b1, b2, weight_decay, momentum,
  grad_clip (0 = off), warmup_steps, decay ("constant" | "cosine") over decay_steps."""
  if optim.decay not in ("constant", "cosine"):
    raise ValueError(f"optim.decay must be 'constant' or 'cosine', got {optim.decay!r}")
  warmup = max(optim.warmup_steps, 1)
  if optim.decay == "cosine":
    lr = optax.warmup_cosine_decay_schedule(0.0, optim.lr, warmup, max(optim.decay_steps, 1))
  elif optim.warmup_steps:
    lr = optax.linear_schedule(0.0, optim.lr, warmup)
  else:
    lr = optim.lr
  if optim.name == "adam":
    tx = optax.adam(lr, b1=optim.b1, b2=optim.b2)
  elif optim.name == "adamw":
    tx = optax.adamw(lr, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay)
  elif optim.name == "sgd":
    tx = optax.sgd(lr, momentum=optim.momentum or None)
  else:
    raise ValueError(f"unknown optimizer {optim.name!r}; use adam, adamw or sgd")
  if optim.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip), tx)
  return tx


def ema_decay_at(decay: float, step) -> jax.Array:
  """EMA decay with a warm-up, min(decay, (1 + n) / (10 + n)) at update n, so short runs average usefully."""
  n = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + n) / (10.0 + n))


def apply_gradients(state: TrainState, name: str, grads, tx: optax.GradientTransformation, ema_decay: float,
                    model_state=None) -> TrainState:
  """One optimizer update of network `name` (and its EMA, when kept); the step counter is the caller's.

  `model_state` replaces the network's batch statistics (those of the pass that computed `grads`).
  """
  params = state.params[name]
  updates, opt_state = tx.update(grads, state.opt_state[name], params)
  params = optax.apply_updates(params, updates)
  new = state.replace(params={**state.params, name: params}, opt_state={**state.opt_state, name: opt_state})
  if name in state.ema:
    d = ema_decay_at(ema_decay, state.step + 1)
    ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.ema[name], params)
    new = new.replace(ema={**state.ema, name: ema})
  if model_state is not None:
    new = new.replace(model_state={**state.model_state, name: model_state})
  return new
