"""The typed train state every family returns from `init` and threads through `train_step`,
and the split of an NNX network into what the state holds.

`params`, `opt_state` and `ema` are dicts keyed by network name ("model" for a
one-network family; "gen" / "disc" for a GAN). `ema` is empty unless
`optim.ema_decay` switches it on. `model_state` holds each network's batch
statistics; `buffers` holds persistent non-gradient state (an EBM's replay
buffer, a mixture's per-restart log-likelihoods). Every leaf is an array, so the
loop can jit, shard, donate and checkpoint the whole state.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from flax import nnx


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict[str, Any]
  opt_state: dict[str, Any] = flax.struct.field(default_factory=dict)
  ema: dict[str, Any] = flax.struct.field(default_factory=dict)
  model_state: dict[str, Any] = flax.struct.field(default_factory=dict)
  buffers: dict[str, Any] = flax.struct.field(default_factory=dict)

  @classmethod
  def create(cls, params, opt_state=None, ema=None, model_state=None, buffers=None) -> "TrainState":
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state or {}, ema=ema or {},
               model_state=model_state or {}, buffers=buffers or {})

  def inference_params(self, name: str = "model"):
    """The weights sampling and evaluation use: the EMA where it is kept, else the trained ones."""
    return self.ema[name] if name in self.ema else self.params[name]


def split_network(module: nnx.Module):
  """(graphdef, params, batch_stats) of an NNX network, states as plain arrays.

  Only `nnx.Param` and `nnx.BatchStat` variables may live in a network: RNG keys
  and caches would make the state depend on how often it was called, so they are
  refused (pass `rngs` at call time, build caches inside the function that uses them).
  Plain arrays keep the states free of trace-level identity: `nnx.merge` inside a
  jitted or differentiated function then builds fresh Variables at that level.
  """
  graphdef, params, stats, other = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
  leftover = jax.tree.leaves(other)
  if leftover:
    kinds = sorted({type(v).__name__ for _, v in other.flat_state()})
    raise ValueError(f"{type(module).__name__} holds {', '.join(kinds)} variables; a jgen network keeps only "
                     f"Param and BatchStat (pass rngs at call time)")
  return graphdef, nnx.as_pure(params), nnx.as_pure(stats)


def batch_stats(module: nnx.Module):
  """The module's batch statistics as plain arrays (after a training pass updated them)."""
  return nnx.as_pure(nnx.state(module, nnx.BatchStat))


def merge_network(graphdef, params, stats) -> nnx.Module:
  return nnx.merge(graphdef, params, stats)
