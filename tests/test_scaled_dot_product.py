"""attend is jax.nn.dot_product_attention's function: values and gradients, causal, masked, bfloat16."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.nn.scaled_dot_product import attend


def _qkv(dtype, b=2, t=6, s=6, h=3, d=4, seed=0):
  keys = jax.random.split(jax.random.key(seed), 3)
  q = jax.random.normal(keys[0], (b, t, h, d))
  k = jax.random.normal(keys[1], (b, s, h, d))
  v = jax.random.normal(keys[2], (b, s, h, d))
  return q.astype(dtype), k.astype(dtype), v.astype(dtype)


def _close(a, b, tol):
  np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)


def _compare(ours, ref, q, k, v):
  """Values, and gradients against one random cotangent, of two attention functions, each under one jit (run
  eagerly, every operation would compile on its own for each shape)."""
  g = jax.random.normal(jax.random.key(5), q.shape)

  @jax.jit
  def values_and_grads(q, k, v):
    return [(f(q, k, v), jax.grad(lambda *a, f=f: jnp.sum(f(*a) * g), argnums=(0, 1, 2))(q, k, v)) for f in (ours, ref)]
  (ours_out, ours_grads), (ref_out, ref_grads) = values_and_grads(q, k, v)
  _close(ours_out, ref_out, 1e-6)
  for a, b in zip(ours_grads, ref_grads):
    _close(a, b, 1e-5)


@pytest.mark.parametrize("case", ["plain", "causal", "mask"])
def test_matches_jax_values_and_gradients(case):
  q, k, v = _qkv(jnp.float32)
  mask = jax.random.bernoulli(jax.random.key(9), 0.6, (2, 1, 6, 6)).at[..., 0].set(True) if case == "mask" else None
  ours = lambda q, k, v: attend(q, k, v, causal=case == "causal", mask=mask)
  ref = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=case == "causal", mask=mask)
  _compare(ours, ref, q, k, v)


def test_causal_output_ignores_later_keys():
  q, k, v = _qkv(jnp.float32)
  changed = v.at[:, 4:].set(100.0)  # positions 4 and 5 may only reach outputs 4 and 5
  a, b = attend(q, k, v, causal=True), attend(q, k, changed, causal=True)
  np.testing.assert_array_equal(np.asarray(a[:, :4]), np.asarray(b[:, :4]))
  assert not np.allclose(np.asarray(a[:, 4:]), np.asarray(b[:, 4:]))


def test_cache_mask_with_fewer_queries_than_keys():
  """One query against a cache of 6 keys of which 3 are written: as jax, and blind to the unwritten ones."""
  q, k, v = _qkv(jnp.float32, t=1)
  written = (jnp.arange(6) <= 2)[None, None, None, :]
  _close(attend(q, k, v, mask=written), jax.nn.dot_product_attention(q, k, v, mask=written), 1e-6)
  junk = v.at[:, 3:].set(1e6)  # unwritten cache rows get exactly zero weight
  np.testing.assert_array_equal(np.asarray(attend(q, k, junk, mask=written)), np.asarray(attend(q, k, v, mask=written)))


def test_bfloat16_keeps_dtype_and_tracks_float32():
  q, k, v = _qkv(jnp.bfloat16)
  out = attend(q, k, v, causal=True)
  assert out.dtype == jnp.bfloat16
  ref = jax.nn.dot_product_attention(q, k, v, is_causal=True)
  _close(out, ref, 2e-2)
  exact = attend(*(a.astype(jnp.float32) for a in (q, k, v)), causal=True)
  _close(out, exact, 3e-2)


@pytest.mark.parametrize("t", [1, 2, 7, 33])
def test_causal_halves_at_any_length(t):
  # Causal attention runs in two halves of the queries (the first half against the first half of the keys);
  # odd lengths split unevenly, and a single position does not split.
  q, k, v = _qkv(jnp.float32, t=t, s=t)
  ours = lambda q, k, v: attend(q, k, v, causal=True)
  ref = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True)
  _compare(ours, ref, q, k, v)
