"""The encoder / decoder pair of the VAE family, and the decoder's pixel likelihood.

`arch = "conv"`: stride-2 convs and transposed convs (jgen.nn.convnets); `"resnet"`:
residual blocks at each resolution (jgen.nn.resnet). A conditional model gives the
encoder the one-hot label as extra input planes and the decoder the one-hot label
beside z. The decoder's outputs are Bernoulli logits per pixel ("bernoulli", for
binarized images) or a discretized logistic mixture per pixel over the 256 levels
("logistic", PixelCNN++'s likelihood without the autoregression), so the same
networks serve both likelihood spaces.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.eval import likelihood
from jgen.nn import pixel_heads
from jgen.nn.bernoulli import bernoulli_log_prob
from jgen.nn.convnets import ConvDecoder, ConvEncoder
from jgen.nn.precision import to_float32
from jgen.nn.resnet import ResDecoder, ResEncoder, one_hot

ARCHS = ("conv", "resnet")
DECODERS = ("bernoulli", "logistic")


def decoder_outputs(decoder: str, channels: int, components: int) -> int:
  if decoder == "logistic":
    if channels != 1:
      raise ValueError("model.decoder='logistic' models one image channel; use 'bernoulli' or grey images")
    return 3 * components
  return channels


def check_levels(image_shape, channels) -> None:
  """Each channel size is one resolution level that halves the image side: the side must stay whole."""
  h, w = image_shape[:2]
  levels = len(channels)
  if h % 2**levels or w % 2**levels:
    most = max(d for d in range(levels + 1) if h % 2**d == 0 and w % 2**d == 0)
    raise ValueError(f"model.channels={tuple(channels)}: {levels} levels halve the {h}x{w} images {levels} times; "
                     f"these allow at most {most} (give {most} channel sizes)")


class EncoderDecoder(nnx.Module):
  """encode(x, label) -> [B, code_dim] features (a Gaussian's (mean, log-variance) for a VAE, z for an
  autoencoder); decode(z, label) -> [B, H, W, P] the decoder's distribution parameters. Both compute in
  `dtype` (mixed precision) and return float32."""

  def __init__(self, image_shape, model, code_dim: int, num_classes: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    h, w, c = image_shape
    self.num_classes = num_classes
    self.dtype = dtype
    out = decoder_outputs(model.decoder, c, model.decoder_components)
    channels = tuple(model.channels)
    if model.arch == "resnet":
      self.encoder = ResEncoder(image_shape, channels, code_dim, blocks=model.blocks, num_classes=num_classes,
                                dtype=dtype, rngs=rngs)
      self.decoder = ResDecoder(model.latent_dim + num_classes, image_shape, tuple(reversed(channels)), out,
                                blocks=model.blocks, dtype=dtype, rngs=rngs)
    else:
      self.encoder = ConvEncoder((h, w, c + num_classes), channels, code_dim, dtype=dtype, rngs=rngs)
      self.decoder = ConvDecoder(model.latent_dim + num_classes, (h, w, out), tuple(reversed(channels)),
                                 dtype=dtype, rngs=rngs)
    self.resnet = model.arch == "resnet"

  def encode(self, x, label=None):
    x = x.astype(self.dtype)
    if not self.num_classes:
      return to_float32(self.encoder(x))
    y = one_hot(label, self.num_classes).astype(self.dtype)
    if self.resnet:
      return to_float32(self.encoder(x, y))
    planes = jnp.broadcast_to(y[:, None, None, :], x.shape[:3] + (self.num_classes,))
    return to_float32(self.encoder(jnp.concatenate([x, planes], axis=-1)))

  def decode(self, z, label=None):
    if self.num_classes:
      z = jnp.concatenate([z, one_hot(label, self.num_classes)], axis=-1)
    return to_float32(self.decoder(z.astype(self.dtype)))


def log_likelihood(decoder: str, out, x) -> jax.Array:
  """log p(x | z) in nats per example [B]: x binary {0, 1} ("bernoulli") or 8-bit images in [0, 1] ("logistic")."""
  if decoder == "logistic":
    return pixel_heads.log_prob("logistic_mixture", out, likelihood.to_levels(x))
  return jnp.sum(bernoulli_log_prob(out, x), axis=tuple(range(1, x.ndim)))


def mean_image(decoder: str, out) -> jax.Array:
  """The decoder's mean image in [0, 1]: Bernoulli probabilities, or the mixture's mean level / 255."""
  if decoder == "logistic":
    logits, means, _ = jnp.split(out, 3, axis=-1)
    mean = jnp.sum(jax.nn.softmax(logits, axis=-1) * jnp.clip(means, -1.0, 1.0), axis=-1, keepdims=True)
    return (mean + 1.0) / 2.0
  return jax.nn.sigmoid(out)
