"""`nnx.Rngs` whose streams draw the same keys without a per-draw cost that grows with the traced program.

flax's `RngStream` advances its counter with an indexed assignment (`count[...] += 1`), and `Variable.set_value`
then compares the new value's `sharding` with the old one's. Under tracing (`eval_shape`, `jit`) the new value
is a tracer, whose `sharding` raises an AttributeError, and jax builds that error's message by walking every
equation traced so far to find where the tracer came from. So each draw costs time in proportion to the
program traced before it, and building a network under tracing costs its size squared: the DDPM U-Net `full`
config's 980 draws took ~1 s of `Runner.setup` (the abstract networks) and ~1 s more of the init's trace.

These streams draw exactly flax's keys (fold_in(key, count), then count + 1; tests/test_rngs.py) and replace
the counter's whole value, which compares no shardings. Networks built by the families use them.
"""

import jax
from flax import nnx


class RngStream(nnx.RngStream):
  """`nnx.RngStream` with its counter replaced, not assigned by index, at each draw."""

  def __call__(self) -> jax.Array:
    key = jax.random.fold_in(self.key.get_value(), self.count.get_value())
    # flax's Variable refuses this from another trace than the stream's (TraceContextError), as for its own streams
    self.count.set_value(self.count.get_value() + 1)
    return key


class Rngs(nnx.Rngs):
  """`nnx.Rngs(default, **streams)` with jgen's `RngStream`s: same arguments, same keys."""

  def __init__(self, default=None, **rngs):
    super().__init__(default, **rngs)
    for tag, stream in list(vars(self).items()):
      if type(stream) is nnx.RngStream:
        setattr(self, tag, RngStream(stream.key.get_value(), tag=tag))
