"""categorical_log_prob is take_along_axis(log_softmax(logits), labels): values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.nn.categorical import categorical_log_prob


def _reference(logits, labels):
  return jnp.take_along_axis(jax.nn.log_softmax(logits, -1), labels[..., None], -1)[..., 0]


@pytest.mark.parametrize("shape,k", [((7,), 5), ((2, 3, 4), 256)])
def test_values_and_gradients_match_the_composition(shape, k):
  logits = 4.0 * jax.random.normal(jax.random.key(0), (*shape, k))
  labels = jax.random.randint(jax.random.key(1), shape, 0, k)
  g = jax.random.normal(jax.random.key(2), shape)
  np.testing.assert_allclose(np.asarray(categorical_log_prob(logits, labels)), np.asarray(_reference(logits, labels)),
                             rtol=1e-6, atol=1e-6)
  ours = jax.grad(lambda l: jnp.sum(categorical_log_prob(l, labels) * g))(logits)
  ref = jax.grad(lambda l: jnp.sum(_reference(l, labels) * g))(logits)
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-6, atol=1e-6)


def test_probabilities_sum_to_one_and_gradient_rows_sum_to_zero():
  logits = jax.random.normal(jax.random.key(3), (4, 6))
  every_label = jnp.broadcast_to(jnp.arange(6), (4, 6))
  log_p = jax.vmap(lambda l: categorical_log_prob(jnp.broadcast_to(l, (6, 6)), jnp.arange(6)))(logits)
  np.testing.assert_allclose(np.asarray(jnp.exp(log_p).sum(-1)), np.ones(4), rtol=1e-6)
  grad = jax.grad(lambda l: jnp.sum(categorical_log_prob(l, every_label[:, 0])))(logits)
  np.testing.assert_allclose(np.asarray(grad.sum(-1)), np.zeros(4), atol=1e-6)  # onehot - softmax


def test_large_logits_stay_finite():
  logits = jnp.array([[1e4, -1e4, 0.0]])
  labels = jnp.array([1])
  value, grad = jax.value_and_grad(lambda l: categorical_log_prob(l, labels)[0])(logits)
  assert np.isfinite(float(value)) and float(value) == pytest.approx(-2e4)
  np.testing.assert_allclose(np.asarray(grad), [[-1.0, 1.0, 0.0]], atol=1e-6)
