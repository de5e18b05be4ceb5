"""jgen.nn.bernoulli.bernoulli_log_prob against optax's sigmoid cross-entropy: values and gradients, binary and
soft targets, logits out to the tails."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgen.nn.bernoulli import bernoulli_log_prob

LOGITS = np.concatenate([np.linspace(-30.0, 30.0, 121), [0.0, 1e-3, -1e-3, 88.0, -88.0]]).astype(np.float32)


def _exact(logits, x):
  """x log sigmoid(l) + (1 - x) log sigmoid(-l) in float64."""
  l = np.asarray(logits, np.float64)
  log_sigmoid = lambda v: -np.logaddexp(0.0, -v)
  return x * log_sigmoid(l) + (1.0 - x) * log_sigmoid(-l)


def test_values_match_the_cross_entropy_form():
  for x in (0.0, 1.0, 0.3):
    targets = np.full_like(LOGITS, x)
    ours = np.asarray(bernoulli_log_prob(jnp.asarray(LOGITS), jnp.asarray(targets)), np.float64)
    theirs = -np.asarray(optax.sigmoid_binary_cross_entropy(jnp.asarray(LOGITS), jnp.asarray(targets)), np.float64)
    exact = _exact(LOGITS, x)
    # Within a few float32 ulps of |l| (the cancellation of x l - softplus(l)) and of the result.
    tolerance = 4 * np.spacing(np.abs(LOGITS)).astype(np.float64) + 4 * np.spacing(np.abs(exact).astype(np.float32))
    assert np.all(np.abs(ours - exact) <= tolerance)
    assert np.all(np.abs(theirs - exact) <= tolerance)
    assert np.all(ours <= 0.0)  # x l <= max(l, 0) <= softplus(l) for x in [0, 1]


def test_gradient_is_target_minus_probability():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(size=LOGITS.shape).astype(np.float32))
  for targets in (x, jnp.round(x)):
    grad = jax.grad(lambda l: jnp.sum(bernoulli_log_prob(l, targets)))(jnp.asarray(LOGITS))
    theirs = jax.grad(lambda l: -jnp.sum(optax.sigmoid_binary_cross_entropy(l, targets)))(jnp.asarray(LOGITS))
    np.testing.assert_allclose(grad, targets - jax.nn.sigmoid(jnp.asarray(LOGITS)), atol=1e-6)
    np.testing.assert_allclose(grad, theirs, atol=1e-6)


def test_broadcasts_like_the_images():
  logits = jnp.zeros((2, 4, 4, 1))
  x = jnp.ones((2, 4, 4, 1))
  np.testing.assert_allclose(jnp.sum(bernoulli_log_prob(logits, x)), 32 * np.log(0.5), rtol=1e-6)
