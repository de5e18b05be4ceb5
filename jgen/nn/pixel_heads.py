"""The output distributions of a pixel given the pixels before it: 256-way softmax, discretized logistic mixture
(PixelCNN++, Salimans et al. 2017), Bernoulli for binarized images.

Each head turns the network's output features at every position into log p(x_i | x_<i) of the observed
pixel, and draws a pixel from them. Pixels are integer levels 0..255 (categorical, logistic mixture) or
{0, 1} (Bernoulli). The heads compute in float32 whatever dtype the network's outputs come in: a softmax over
256 levels or a sum over 784 pixels in bfloat16 would lose digits (jgen.nn.precision).
"""

import jax
import jax.numpy as jnp

from jgen.nn.bernoulli import bernoulli_log_prob
from jgen.nn.categorical import categorical_log_prob
from jgen.nn.precision import to_float32

HEADS = ("categorical256", "logistic_mixture", "bernoulli")
LEVELS = 256


def num_outputs(head: str, channels: int, components: int) -> int:
  """Output features per position: contiguous blocks, one per image channel (so masks keep channel order)."""
  if head == "categorical256":
    return channels * LEVELS
  if head == "logistic_mixture":
    if channels != 1:
      raise ValueError("the logistic-mixture head models one image channel")
    return 3 * components
  if head == "bernoulli":
    return channels
  raise ValueError(f"unknown head {head!r}; use one of {', '.join(HEADS)}")


def _log_sigmoid_difference(a, b):
  """log(sigmoid(a) - sigmoid(b)) for a > b, accurate in both tails (sigmoid(a) - sigmoid(b) equals
  sigmoid(-b) - sigmoid(-a): computed on the side where the two are small)."""
  flip = (a + b) > 0
  hi, lo = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
  log_hi, log_lo = jax.nn.log_sigmoid(hi), jax.nn.log_sigmoid(lo)
  return log_hi + jnp.log1p(-jnp.exp(jnp.minimum(log_lo - log_hi, -1e-7)))


def logistic_mixture_log_probs(params, levels):
  """log P(level) [..] of a discretized logistic mixture; params [..., 3K] = (mixture logits, means, log-scales)
  on the [-1, 1] scale where level k sits at 2k / 255 - 1 with a bin of width 2 / 255; the edge bins take the
  tails (level 0 everything below, level 255 everything above)."""
  logits, means, log_scales = jnp.split(params, 3, axis=-1)
  log_scales = jnp.maximum(log_scales, -7.0)
  x = (2.0 * levels.astype(jnp.float32) / (LEVELS - 1) - 1.0)[..., None]
  inv_s = jnp.exp(-log_scales)
  upper = inv_s * (x - means + 1.0 / (LEVELS - 1))
  lower = inv_s * (x - means - 1.0 / (LEVELS - 1))
  mid = _log_sigmoid_difference(upper, lower)
  log_p = jnp.where(x < -0.999, jax.nn.log_sigmoid(upper), jnp.where(x > 0.999, jax.nn.log_sigmoid(-lower), mid))
  return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + log_p, axis=-1)


def log_prob(head: str, out, x) -> jax.Array:
  """log p of every example [B] in nats: out [B, H, W, P] the network's outputs, x [B, H, W, C] the pixels."""
  channels, out = x.shape[-1], to_float32(out)
  if head == "categorical256":
    logits = out.reshape(out.shape[:-1] + (channels, LEVELS))
    per_pixel = categorical_log_prob(logits, x)
  elif head == "logistic_mixture":
    per_pixel = logistic_mixture_log_probs(out, x[..., 0])[..., None]
  else:
    per_pixel = bernoulli_log_prob(out, x)
  return jnp.sum(per_pixel, axis=tuple(range(1, per_pixel.ndim)))


def sample_channel(head: str, out, channel: int, channels: int, rng, temperature: float = 1.0) -> jax.Array:
  """One channel's value [B] at one position, given the outputs there [B, P] (levels, or {0, 1})."""
  out = to_float32(out)
  if head == "categorical256":
    logits = out.reshape(out.shape[:-1] + (channels, LEVELS))[:, channel]
    return jax.random.categorical(rng, logits / temperature).astype(jnp.float32)
  if head == "logistic_mixture":
    logits, means, log_scales = jnp.split(out, 3, axis=-1)
    k_rng, u_rng = jax.random.split(rng)
    k = jax.random.categorical(k_rng, logits / temperature)
    mean = jnp.take_along_axis(means, k[:, None], -1)[:, 0]
    scale = jnp.exp(jnp.maximum(jnp.take_along_axis(log_scales, k[:, None], -1)[:, 0], -7.0)) * temperature
    u = jax.random.uniform(u_rng, mean.shape, minval=1e-5, maxval=1.0 - 1e-5)
    value = jnp.clip(mean + scale * (jnp.log(u) - jnp.log1p(-u)), -1.0, 1.0)
    return jnp.round((value + 1.0) / 2.0 * (LEVELS - 1))
  return jax.random.bernoulli(rng, jax.nn.sigmoid(out[:, channel] / temperature)).astype(jnp.float32)
