"""The U-Net keeps the input's shape at every configured resolution; its pieces do what they say."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgen.nn.attention import SelfAttention2d
from jgen.nn.embeddings import sinusoidal_embedding
from jgen.nn.unet import UNet
from tests.helpers import REPO


def _config(variant):
  from jgen import config as config_lib

  return config_lib.load(os.path.join(REPO, "configs", "diffusion", "ddpm_fashion_mnist.py") + ":" + variant)


def _randomize_zero_kernels(model, seed=7):
  """Residual branches and the output conv start at zero; give them weights so that the
  output depends on every input (time, class, pixels)."""
  leaves, treedef = jax.tree.flatten(nnx.state(model, nnx.Param))
  zero = [p.ndim > 1 and not bool(jnp.any(p)) for p in leaves]

  @jax.jit
  def fill(leaves):
    keys = jax.random.split(jax.random.key(seed, impl="rbg"), len(leaves))
    return [0.1 * jax.random.normal(k, p.shape) if z else p for k, p, z in zip(keys, leaves, zero)]

  nnx.update(model, jax.tree.unflatten(treedef, fill(leaves)))


def _output_shape(build, input_shape):
  """The output's shape and dtype from tracing alone (no compilation)."""
  model = nnx.eval_shape(build)
  graphdef, state = nnx.split(model)
  b = input_shape[0]
  return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x, jnp.zeros(b), jnp.zeros(b, jnp.int32)),
                        state, jax.ShapeDtypeStruct(input_shape, jnp.float32)), model


@pytest.mark.parametrize("size,mults,attention", [
    (28, (1, 2, 2), (1,)), (32, (1, 2, 2, 2), (2,)), (7, (1, 2), (0, 1)), (16, (1,), ()), (9, (1, 1, 1), (2,)),
])
def test_output_shape_equals_input_shape(size, mults, attention):
  build = lambda: UNet(3, channels=8, channel_mults=mults, num_res_blocks=2, attention_levels=attention,
                       num_classes=4, rngs=nnx.Rngs(0))
  out, _ = _output_shape(build, (2, size, size, 3))
  assert out.shape == (2, size, size, 3) and out.dtype == jnp.float32


def _small_unet(dtype=jnp.float32, abstract=False):
  # The smoke config's U-Net, built under jit with an rbg key: one quick compile instead of
  # one per initializer (or only traced, with `abstract`, to receive parameters).
  m = _config("smoke").model
  build = lambda: UNet(1, channels=m.channels, channel_mults=m.channel_mults, num_res_blocks=m.num_res_blocks,
                       attention_levels=m.attention_levels, num_classes=10, dropout=m.dropout,
                       dtype=dtype, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
  return nnx.eval_shape(build) if abstract else nnx.jit(build)()


def _runner(model):
  graphdef, state = nnx.split(model)

  @jax.jit
  def run(x, t, label, key):
    return nnx.merge(graphdef, state)(x, t, label, rngs=None if key is None else nnx.Rngs(dropout=key))

  return run


@pytest.fixture(scope="module")
def small_model():
  model = _small_unet()
  _randomize_zero_kernels(model)
  return model


@pytest.fixture(scope="module")
def small_f32(small_model):
  return _runner(small_model)


# One 7x7 input (an odd size: 7 -> 4 -> 7) at four (time, label) pairs.
X = jnp.broadcast_to(jax.random.normal(jax.random.key(3), (1, 7, 7, 1)), (4, 7, 7, 1))
T = jnp.array([10.0, 500.0, 10.0, 10.0])
LABEL = jnp.array([0, 0, 1, 10])


def test_time_and_class_condition_the_output(small_f32):
  out = small_f32(X, T, LABEL, None)
  assert out.shape == X.shape
  assert not np.allclose(out[0], out[1], atol=1e-4)
  assert not np.allclose(out[0], out[2], atol=1e-4)
  # No label means the extra "no label" class (index num_classes = 10).
  np.testing.assert_allclose(small_f32(X, T, None, None)[3], out[3], atol=1e-5)


def test_dropout_only_with_rngs(small_f32):
  np.testing.assert_array_equal(small_f32(X, T, LABEL, None), small_f32(X, T, LABEL, None))
  a, b = small_f32(X, T, LABEL, jax.random.key(0)), small_f32(X, T, LABEL, jax.random.key(1))
  assert not np.allclose(a, b)


def test_bfloat16_compute_tracks_float32(small_model, small_f32):
  # Same parameters; only the compute dtype differs.
  bf16 = _small_unet(jnp.bfloat16, abstract=True)
  nnx.update(bf16, nnx.state(small_model))
  out32 = small_f32(X, T, LABEL, None)
  out16 = _runner(bf16)(X, T, LABEL, None)
  assert out16.dtype == jnp.float32
  assert float(jnp.abs(out32 - out16).max()) < 0.05 * float(jnp.abs(out32).max())
  assert not np.array_equal(out32, out16)


def test_sinusoidal_embedding_closed_form():
  t = jnp.array([0.0, 1.0, 250.0])
  emb = sinusoidal_embedding(t, 8)
  freqs = 10_000.0 ** (-np.arange(4) / 4)
  expected = np.concatenate([np.sin(np.outer(t, freqs)), np.cos(np.outer(t, freqs))], axis=1)
  np.testing.assert_allclose(emb, expected, atol=1e-4)


def test_attention_is_identity_at_init_and_mixes_positions_after():
  attn = SelfAttention2d(8, num_heads=2, rngs=nnx.Rngs(0))
  apply = nnx.jit(lambda module, x: module(x))
  x = jax.random.normal(jax.random.key(5), (2, 4, 4, 8))
  np.testing.assert_allclose(apply(attn, x), x)
  attn.proj.kernel[...] = jax.random.normal(jax.random.key(6), attn.proj.kernel.shape)
  # Changing one pixel changes the output at every other pixel.
  y = x.at[:, 0, 0].add(1.0)
  diff = jnp.abs(apply(attn, y) - apply(attn, x)).sum(-1)
  assert bool(jnp.all(diff[:, 1:, :] > 0))


def _stacked(unrolled, scanned, state):
  """`state` (parameters or their gradients) of `unrolled` in the layout of `scanned`: each run of equal blocks
  stacked on a leading axis."""
  from jgen.nn.unet import BlockRun

  for path in ("down", "up"):
    for i, (src, dst) in enumerate(zip(getattr(unrolled, path), getattr(scanned, path))):
      if isinstance(dst, BlockRun) and dst.scan:
        blocks = state[path][i]["blocks"]
        state[path][i]["blocks"] = jax.tree.map(lambda *x: jnp.stack(x), *[blocks[j] for j in range(dst.n)])
  return state


def _scan_pair():
  """An unrolled U-Net with random weights and a `scan_blocks` one holding the same weights. Two levels of two
  blocks make three runs of 2 (down at level 0, up at both levels, one with attention) and four single blocks."""
  kw = dict(channels=8, channel_mults=(1, 2), num_res_blocks=2, attention_levels=(1,), num_heads=2, dropout=0.1,
            num_classes=4)
  unrolled = nnx.jit(lambda: UNet(1, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")), **kw))()
  _randomize_zero_kernels(unrolled)
  scanned = nnx.eval_shape(lambda: UNet(1, scan_blocks=True, rngs=nnx.Rngs(0), **kw))
  assert [getattr(layer, "n", 0) for layer in (*scanned.down, *scanned.up)] == [2, 0, 1, 1, 2, 1, 0, 1, 2]
  nnx.update(scanned, _stacked(unrolled, scanned, nnx.state(unrolled)))
  return unrolled, scanned


def test_scanned_blocks_compute_the_unrolled_function():
  unrolled, scanned = _scan_pair()
  count = lambda m: sum(x.size for x in jax.tree.leaves(nnx.state(m, nnx.Param)))
  assert count(scanned) == count(unrolled)
  assert len(jax.tree.leaves(nnx.state(scanned, nnx.Param))) < len(jax.tree.leaves(nnx.state(unrolled, nnx.Param)))
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
  t, label = jnp.array([3.0, 700.0]), jnp.array([1, 4])

  def output_and_grads(model, key):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def f(params):
      def loss(params):
        out = nnx.merge(graphdef, params, rest)(x, t, label, rngs=None if key is None else nnx.Rngs(dropout=key))
        return jnp.sum(out**2), out
      return jax.grad(loss, has_aux=True)(params)

    grads, out = f(params)
    return out, grads

  # Deterministic: the outputs. With dropout (each block draws the same mask): outputs and every gradient.
  deterministic = jax.jit(lambda m: m(x, t, label))
  out_u, out_s = deterministic(unrolled), deterministic(scanned)
  np.testing.assert_allclose(out_s, out_u, atol=1e-5, rtol=1e-5)
  out_u, grads_u = output_and_grads(unrolled, jax.random.key(2))
  out_s, grads_s = output_and_grads(scanned, jax.random.key(2))
  np.testing.assert_allclose(out_s, out_u, atol=1e-5, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), grads_s,
               _stacked(unrolled, scanned, grads_u))
  outs = [deterministic(scanned), out_s]
  assert not np.allclose(outs[0], outs[1], atol=1e-4)  # dropout is on
  # The bound and the samplers call the network inside jax.lax.scan, closing over its parameters.
  graphdef, state = nnx.split(scanned)

  @jax.jit
  def inside_a_scan(state):
    model = nnx.merge(graphdef, state)
    return jax.lax.scan(lambda carry, _: (carry, model(x, t, label)), 0, length=1)[1][0]

  np.testing.assert_allclose(inside_a_scan(state), outs[0], atol=1e-5, rtol=1e-5)
