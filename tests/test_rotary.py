"""rotary: the pairwise rotation by position * base^(-2i/d); its hand-written gradient equals autodiff's."""

import jax
import jax.numpy as jnp
import numpy as np

from jgen.nn.rotary import rotary


def _reference(x, positions, base=10_000.0):
  """The rotation written out per pair in numpy (float64)."""
  x = np.asarray(x, np.float64)
  half = x.shape[-1] // 2
  out = np.empty_like(x)
  for t, p in enumerate(np.asarray(positions)):
    for i in range(half):
      a = p * base ** (-i / half)
      x1, x2 = x[:, t, :, i], x[:, t, :, i + half]
      out[:, t, :, i] = x1 * np.cos(a) - x2 * np.sin(a)
      out[:, t, :, i + half] = x1 * np.sin(a) + x2 * np.cos(a)
  return out


def test_values_are_the_pairwise_rotation_and_keep_norms():
  x = jax.random.normal(jax.random.key(0), (2, 5, 3, 8))
  positions = jnp.array([0, 1, 2, 7, 40])
  y = rotary(x, positions)
  np.testing.assert_allclose(np.asarray(y), _reference(x, positions), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(y), axis=-1), np.linalg.norm(np.asarray(x), axis=-1),
                             rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(y[:, 0]), np.asarray(x[:, 0]))  # position 0 is no rotation


def test_gradient_equals_autodiff_of_the_rotation():
  x = jax.random.normal(jax.random.key(0), (2, 6, 2, 4))
  positions = jnp.arange(6) * 3
  g = jax.random.normal(jax.random.key(1), x.shape)

  def by_autodiff(x):
    half = x.shape[-1] // 2
    angles = positions.astype(jnp.float32)[:, None] * 10_000.0 ** (-jnp.arange(half, dtype=jnp.float32) / half)
    cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)

  ours = jax.vjp(lambda x: rotary(x, positions), x)[1](g)[0]
  ref = jax.vjp(by_autodiff, x)[1](g)[0]
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-5, atol=1e-5)
  second = jax.jit(jax.grad(lambda x: jnp.sum(rotary(x, positions) ** 3)))(x)  # under jit, through a power
  np.testing.assert_allclose(np.asarray(second), np.asarray(jax.grad(lambda x: jnp.sum(by_autodiff(x) ** 3))(x)),
                             rtol=1e-4, atol=1e-4)


def test_bfloat16_in_bfloat16_out():
  x = jnp.ones((1, 3, 1, 4), jnp.bfloat16)
  y, vjp = jax.vjp(lambda x: rotary(x, jnp.arange(3)), x)
  assert y.dtype == jnp.bfloat16 and vjp(y)[0].dtype == jnp.bfloat16
