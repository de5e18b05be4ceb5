"""PixelCNN (masked convolutions, masks A and B, residual blocks) and Gated PixelCNN: p(x) = prod_i p(x_i | x_<i).

The exact log-likelihood is one network pass; sampling is one jitted `lax.fori_loop` over the positions (and
the channels within each), each step running the network on the image drawn so far and drawing the next
value. model: head ("categorical256" | "logistic_mixture" | "bernoulli"), features, num_blocks (PixelCNN
residual blocks / Gated PixelCNN layers), kernel (the gated layers'), components (logistic mixture),
label_conditional (p(x | y): a learned per-class bias in every block), temperature (of sampling), dtype
(the networks' compute dtype, jgen.nn.precision; the heads score the outputs in float32).
The likelihood is that of the 256-level pixels (bits/dim = nll / (D ln 2)), or, with the Bernoulli head, of
binarized images (nats on the seeded binarization the VAE is scored on).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.eval import likelihood
from jgen.nn import pixel_heads as heads
from jgen.family import Family
from jgen.nn.conv import Conv
from jgen.nn.masked import GatedBlock, MaskedConv2d
from jgen.nn.precision import to_float32
from jgen.registry import register


class PixelCNNNet(nnx.Module):
  """A 7x7 mask-A convolution, residual blocks (1x1 -> 3x3 mask B -> 1x1), two 1x1 mask-B layers to the head."""

  def __init__(self, channels, features, num_blocks, out_features, num_classes, *, dtype=jnp.float32, rngs):
    c, f = channels, features
    kw = dict(dtype=dtype, rngs=rngs)
    self.dtype = dtype
    self.first = MaskedConv2d(c, f, 7, "A", c, **kw)
    self.blocks = nnx.List([nnx.List([MaskedConv2d(f, f // 2, 1, "B", c, **kw),
                                      MaskedConv2d(f // 2, f // 2, 3, "B", c, **kw),
                                      MaskedConv2d(f // 2, f, 1, "B", c, **kw)]) for _ in range(num_blocks)])
    self.hidden = MaskedConv2d(f, f, 1, "B", c, **kw)
    self.out = MaskedConv2d(f, out_features, 1, "B", c, **kw)
    self.label_bias = nnx.Embed(num_classes, f, **kw) if num_classes else None

  def __call__(self, x, label=None):
    h = self.first(x.astype(self.dtype))
    bias = self.label_bias(label)[:, None, None, :] if self.label_bias is not None and label is not None else 0.0
    for reduce, conv, expand in self.blocks:
      h = h + bias + expand(jax.nn.relu(conv(jax.nn.relu(reduce(jax.nn.relu(h))))))
    return self.out(jax.nn.relu(self.hidden(jax.nn.relu(h))))


class GatedPixelCNNNet(nnx.Module):
  """Gated layers with vertical and horizontal stacks (no blind spot), then two 1x1 layers to the head."""

  def __init__(self, channels, features, num_layers, kernel, out_features, num_classes, *, dtype=jnp.float32,
               rngs):
    if channels != 1:
      raise ValueError("the gated PixelCNN here models one image channel")
    self.dtype = dtype
    self.layers = nnx.List([GatedBlock(channels if i == 0 else features, features, kernel, i == 0, num_classes,
                                       dtype=dtype, rngs=rngs) for i in range(num_layers)])
    self.hidden = Conv(features, features, (1, 1), dtype=dtype, rngs=rngs)
    self.out = Conv(features, out_features, (1, 1), dtype=dtype, rngs=rngs)

  def __call__(self, x, label=None):
    v = h = x.astype(self.dtype)
    for layer in self.layers:
      v, h = layer(v, h, label)
    return self.out(jax.nn.relu(self.hidden(jax.nn.relu(h))))


class _PixelCNN(Family):
  likelihood = "exact"
  mixed_precision = True
  conditions = ("label",)
  sample_options = {"temperature": "model.temperature"}
  choices = {"head": heads.HEADS}

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(head="categorical256", features=64, num_blocks=5, kernel=3, components=5,
                   label_conditional=False, temperature=1.0)
    return d

  def __init__(self, config, spec):
    super().__init__(config, spec)
    if spec.kind != "image":
      raise ValueError(f"{type(self).__name__} models images; the dataset holds {spec.kind}")
    self.head = config.model.head
    self.space = "binary" if self.head == "bernoulli" else "discrete_8bit"
    if config.model.label_conditional and not spec.num_classes:
      raise ValueError("model.label_conditional needs a dataset with labels")
    self.num_classes = spec.num_classes if config.model.label_conditional else 0

  @property
  def num_outputs(self) -> int:
    return heads.num_outputs(self.head, self.spec.shape[-1], self.config.model.components)

  # ---- data <-> the network's input and the head's targets ---------------------------------------------------
  def _targets(self, x_space):
    """Data in the likelihood space -> what the head scores: levels 0..255, or {0, 1}."""
    return x_space if self.head == "bernoulli" else likelihood.to_levels(x_space)

  def _inputs(self, targets):
    """The network reads values in [-1, 1]."""
    scale = 1.0 if self.head == "bernoulli" else heads.LEVELS - 1
    return 2.0 * targets.astype(jnp.float32) / scale - 1.0

  def _labels(self, labels):
    return labels if self.num_classes else None

  def _outputs(self, model, targets, labels):
    """The head's parameters at every position, float32 whatever the network computes in."""
    return to_float32(model(self._inputs(targets), self._labels(labels)))

  # ---- training and likelihood ---------------------------------------------------------------------------------
  def loss(self, model, batch, rng):
    targets = self._targets(self.prepare_data(batch["x"], rng))
    nll = -heads.log_prob(self.head, self._outputs(model, targets, batch["label"]), targets)
    bpd = nll / (self.spec.dims * jnp.log(2.0))
    return jnp.mean(nll), {"nll": jnp.mean(nll), "bits_per_dim": jnp.mean(bpd)}

  def log_density(self, state, x, rng, labels=None):
    targets = self._targets(x)
    return heads.log_prob(self.head, self._outputs(self.network(state), targets, labels), targets)

  def eval_step(self, state, batch, rng):
    nll = -self.log_density(state, self.prepare_data(batch["x"], rng), rng, batch["label"])
    return likelihood.per_example(self.space, nll, self.spec.dims)

  # ---- sampling ------------------------------------------------------------------------------------------------
  def default_cond(self, rng, n):
    return super().default_cond(rng, n) if self.num_classes else None

  def sample(self, state, rng, n, cond=None, start=0, given=None):
    """`n` images in [0, 1], drawn position by position in raster order (channels in order within a pixel).

    `given` [n, H, W, C] (levels, or {0, 1}) with `start` > 0 keeps the first `start` positions of `given` and
    draws the rest (image completion).
    """
    label = (cond or {}).get("label")
    if label is not None and not self.num_classes:
      raise ValueError("this model was trained without labels; sample without a label")
    if label is not None:
      label = jnp.broadcast_to(jnp.asarray(label, jnp.int32), (n,))
    elif self.num_classes:
      label = jnp.arange(n, dtype=jnp.int32) % self.num_classes
    model = self.network(state)
    h, w, c = self.spec.shape
    temperature = self.config.model.temperature
    x = jnp.zeros((n, h, w, c), jnp.float32) if given is None else jnp.asarray(given, jnp.float32)

    def draw(i, x):
      pos, channel = i // c, i % c
      row, col = pos // w, pos % w
      out = to_float32(model(self._inputs(x), label))
      value = heads.sample_channel(self.head, out[:, row, col], channel, c, jax.random.fold_in(rng, i), temperature)
      return x.at[:, row, col, channel].set(value)

    x = jax.lax.fori_loop(start * c, h * w * c, draw, x)
    return x if self.head == "bernoulli" else x / (heads.LEVELS - 1)


@register("pixelcnn", family="autoregressive")
class PixelCNN(_PixelCNN):
  """Masked convolutions with masks A and B and residual blocks (van den Oord et al. 2016a)."""

  @classmethod
  def check_model(cls, model):
    if model.features < 2:  # the residual blocks work on features // 2
      raise ValueError(f"model.features={model.features}: PixelCNN needs >= 2 (its residual blocks halve it)")

  def make_networks(self, rngs):
    m = self.config.model
    return {"model": PixelCNNNet(self.spec.shape[-1], m.features, m.num_blocks, self.num_outputs, self.num_classes,
                                 dtype=self.compute_dtype, rngs=rngs)}


@register("pixelcnn.gated", family="autoregressive")
class GatedPixelCNN(_PixelCNN):
  """Gated layers with vertical and horizontal stacks, no blind spot (van den Oord et al. 2016b)."""

  @classmethod
  def check_model(cls, model):
    if model.kernel % 2 == 0:  # the vertical stack covers kernel // 2 rows above and the centre row
      raise ValueError(f"model.kernel={model.kernel}: the gated layers need an odd kernel (3, 5, ...)")

  def __init__(self, config, spec):
    super().__init__(config, spec)
    if spec.shape[-1] != 1:
      raise ValueError(f"the gated PixelCNN here models one image channel; the dataset has {spec.shape[-1]}")

  def make_networks(self, rngs):
    m = self.config.model
    return {"model": GatedPixelCNNNet(self.spec.shape[-1], m.features, m.num_blocks, m.kernel, self.num_outputs,
                                      self.num_classes, dtype=self.compute_dtype, rngs=rngs)}
