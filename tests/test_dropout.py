import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jgen.nn.dropout import drop_threshold, dropout, random_words


def test_drop_rate_and_scale_follow_the_16_bit_threshold():
  x = jnp.ones((64, 32, 32, 16), jnp.float32)  # 1,048,576 draws
  rate = 0.1
  p = drop_threshold(rate) / 65536
  assert p == 6554 / 65536
  y = np.asarray(dropout(x, rate, jax.random.key(0)))
  dropped = np.mean(y == 0)
  sigma = np.sqrt(p * (1 - p) / x.size)
  assert abs(dropped - p) < 5 * sigma
  np.testing.assert_allclose(np.unique(y), [0.0, 1.0 / (1.0 - p)], rtol=1e-7)
  assert abs(y.mean() - 1.0) < 5 * sigma / (1 - p)  # the expectation is the input


def test_the_two_halves_of_a_word_decide_independently():
  x = jnp.ones((200_000, 2), jnp.float32)  # each row's two elements come from one word's two halves
  y = np.asarray(dropout(x, 0.5, jax.random.key(1)))
  a, b = y[:, 0] == 0, y[:, 1] == 0
  assert abs(a.mean() - 0.5) < 0.005 and abs(b.mean() - 0.5) < 0.005
  assert abs(np.mean(a & b) - 0.25) < 0.004
  # Neighbouring rows (consecutive words) are not correlated either.
  assert abs(np.mean(a[1:] & a[:-1]) - 0.25) < 0.004


def test_every_bit_of_the_words_is_a_fair_coin_independent_of_its_neighbours():
  n = 1 << 20
  words = np.asarray(random_words(jax.random.fold_in(jax.random.key(11), 3), (n,)))
  bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
  sigma = np.sqrt(0.25 / n)
  assert np.all(np.abs(bits.mean(0) - 0.5) < 5 * sigma), bits.mean(0)
  # Consecutive indices differ in one low bit of the input: half the output bits flip (avalanche), each bit too.
  flips = (words[1:] ^ words[:-1])[:, None] >> np.arange(32, dtype=np.uint32) & 1
  assert np.all(np.abs(flips.mean(0) - 0.5) < 5 * np.sqrt(0.25 / (n - 1))), flips.mean(0)


def test_more_words_than_a_uint32_index_counts_are_refused():
  with pytest.raises(ValueError, match="more than 2\\*\\*32"):
    random_words(jax.random.key(0), (1 << 16, (1 << 16) + 1))


def test_masks_of_different_keys_are_independent():
  x = jnp.ones((1 << 20,), jnp.float32)
  base = jax.random.key(12)
  masks = [np.asarray(dropout(x, 0.5, jax.random.fold_in(base, i))) == 0 for i in range(4)]
  masks.append(np.asarray(dropout(x, 0.5, jax.random.key(13))) == 0)
  sigma = np.sqrt(0.25 * 0.75 / x.size)
  for i in range(len(masks)):
    for j in range(i):
      assert abs(np.mean(masks[i] & masks[j]) - 0.25) < 5 * sigma, (i, j)


def test_keys_give_different_masks_and_a_key_the_same():
  x = jnp.ones((8, 9, 5), jnp.float32)  # an odd last axis
  y1, y2 = dropout(x, 0.3, jax.random.key(0)), dropout(x, 0.3, jax.random.key(2))
  assert not np.array_equal(y1, y2)
  np.testing.assert_array_equal(y1, dropout(x, 0.3, jax.random.key(0)))
  np.testing.assert_array_equal(y1, jax.jit(dropout, static_argnums=1)(x, 0.3, jax.random.key(0)))


def test_gradient_is_the_mask_times_the_scale():
  x = jax.random.normal(jax.random.key(3), (16, 10))
  key = jax.random.key(4)
  y = dropout(x, 0.25, key)
  g = jax.grad(lambda x: jnp.sum(dropout(x, 0.25, key) * 3.0))(x)
  scale = 65536 / (65536 - drop_threshold(0.25))
  np.testing.assert_allclose(g, np.where(np.asarray(y) != 0, 3.0 * scale, 0.0), rtol=1e-6)


def test_edge_rates_and_bfloat16():
  x = jnp.arange(1, 13, dtype=jnp.float32).reshape(3, 4)
  np.testing.assert_array_equal(dropout(x, 0.0, jax.random.key(0)), x)
  np.testing.assert_array_equal(dropout(x, 1.0, jax.random.key(0)), np.zeros((3, 4)))
  with pytest.raises(ValueError, match="in \\[0, 1\\]"):
    dropout(x, 1.5, jax.random.key(0))
  xb = jax.random.normal(jax.random.key(5), (4096,)).astype(jnp.bfloat16)
  yb = dropout(xb, 0.1, jax.random.key(6))
  assert yb.dtype == jnp.bfloat16
  kept = np.asarray(yb) != 0
  # Each kept value is x * (1 / keep) rounded once to bf16, not x times a scale already rounded to bf16.
  scale = 65536 / (65536 - 6554)
  expected = (np.asarray(xb, np.float32) * np.float32(scale)).astype(jnp.bfloat16)
  np.testing.assert_array_equal(np.asarray(yb)[kept], expected[kept])


def test_the_mask_does_not_depend_on_the_sharding():
  assert len(jax.devices()) == 8  # tests/conftest.py sets up 8 CPU devices
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  x = jax.random.normal(jax.random.key(6), (16, 6, 6, 8))
  whole = dropout(x, 0.2, jax.random.key(7))
  spread = jax.jit(lambda x: dropout(x, 0.2, jax.random.key(7)),
                   in_shardings=NamedSharding(mesh, P("data")), out_shardings=NamedSharding(mesh, P("data")))(x)
  np.testing.assert_array_equal(whole, spread)
