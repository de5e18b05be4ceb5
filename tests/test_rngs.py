"""jgen's Rngs draw flax's keys, build the same networks, and never ask a tracer for its sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn.rngs import Rngs, RngStream
from jgen.nn.unet import UNet
from tests.test_unet import _randomize_zero_kernels


def _draws(rngs_type):
  rngs = rngs_type(3, dropout=jax.random.key(5))
  # `params` falls back to the default stream, as in flax.
  keys = [jax.random.key_data(draw(rngs)) for _ in range(4)
          for draw in (lambda r: r.params(), lambda r: r.dropout(), lambda r: r(), lambda r: r.dropout.fork()())]
  return keys, [getattr(rngs, tag).count.get_value() for tag in ("default", "dropout")]


@pytest.mark.parametrize("jit", [False, True])
def test_streams_draw_flax_keys_in_order(jit):
  draws = jax.jit(_draws, static_argnums=0) if jit else _draws
  (keys, counts), (flax_keys, flax_counts) = draws(Rngs), draws(nnx.Rngs)
  np.testing.assert_array_equal(np.stack(keys), np.stack(flax_keys))
  assert [int(c) for c in counts] == [int(c) for c in flax_counts] == [8, 8]  # two draws of each a round
  assert all(isinstance(getattr(Rngs(0, dropout=1), tag), RngStream) for tag in ("default", "dropout"))


def _unet(rngs):
  return UNet(1, channels=8, channel_mults=(1,), num_res_blocks=1, attention_levels=(0,), dropout=0.1, rngs=rngs)


def test_networks_and_dropout_equal_flax():
  """Same parameters (values and paths) as with nnx.Rngs and the same dropout masks."""
  ours, flax = (nnx.state(_unet(rngs_type(0)), nnx.Param) for rngs_type in (Rngs, nnx.Rngs))
  assert jax.tree.structure(ours) == jax.tree.structure(flax)
  jax.tree.map(np.testing.assert_array_equal, ours, flax)

  model = _unet(Rngs(0))
  _randomize_zero_kernels(model)  # the residual branches and the output start at zero: let dropout show
  x, t = jax.random.normal(jax.random.key(1), (2, 8, 8, 1)), jnp.array([3.0, 40.0])
  apply = nnx.jit(lambda model, rngs: model(x, t, rngs=rngs))
  ours = apply(model, Rngs(dropout=jax.random.key(2)))
  np.testing.assert_array_equal(ours, apply(model, nnx.Rngs(dropout=jax.random.key(2))))
  assert not np.array_equal(ours, apply(model, Rngs(dropout=jax.random.key(3))))  # dropout is on


def test_no_sharding_lookup_on_tracers(monkeypatch):
  """Building under tracing must not ask tracers for `sharding`: jax's answer (an AttributeError) walks the
  whole program traced so far, which made each flax draw cost time in proportion to the network built before."""
  lookups = []

  def sharding(self):
    lookups.append(1)
    raise AttributeError("sharding")

  monkeypatch.setattr(jax.core.Tracer, "sharding", property(sharding))
  jax.make_jaxpr(lambda x: getattr(x + 1.0, "sharding", None))(1.0)
  assert lookups == [1]  # a lookup is seen (flax 0.12.8's streams make one at every draw)
  lookups.clear()
  nnx.eval_shape(lambda: _unet(Rngs(0)))
  jax.jit(lambda: nnx.state(_unet(Rngs(0)), nnx.Param)).lower()
  assert not lookups


def test_stream_refuses_use_from_another_trace():
  """flax's guard stays: a stream made outside a jitted function cannot be advanced inside it (a leaked tracer)."""
  rngs = Rngs(0)
  with pytest.raises(Exception, match="(?i)trace"):
    jax.jit(lambda: rngs.params())()
