"""The FID-FMNIST feature network: a small Fashion-MNIST classifier whose penultimate layer gives features.

It trains through the same loop as the generative models (config
configs/eval/fmnist_classifier.py) and its parameters ship in jgen/assets, so
that every run's FID-FMNIST, KID and precision/recall use one fixed network.
It is a `Model` the loop trains, not a generative `Family`: it has no `sample` or `log_prob`.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgen.family import Model
from jgen.nn.conv import Conv
from jgen.nn import rngs as rngs_lib
from jgen.registry import register


class FeatureClassifier(nnx.Module):
  """Conv stages (each: `convs_per_stage` 3x3 conv + batch norm + ReLU, then 2x2 max-pool), a dense feature layer, logits."""

  def __init__(self, *, channels=(32, 64, 64), convs_per_stage=1, feature_dim=128, num_classes=10,
               dropout=0.3, image_size=28, in_channels=1, rngs: nnx.Rngs):
    convs, norms, c_in, size = [], [], in_channels, image_size
    for c_out in channels:
      for _ in range(convs_per_stage):
        convs.append(Conv(c_in, c_out, (3, 3), use_bias=False, rngs=rngs))
        norms.append(nnx.BatchNorm(c_out, momentum=0.9, rngs=rngs))
        c_in = c_out
      size //= 2
    self.convs, self.norms = nnx.List(convs), nnx.List(norms)
    self.convs_per_stage = convs_per_stage
    self.feature = nnx.Linear(size * size * c_in, feature_dim, rngs=rngs)
    self.dropout = nnx.Dropout(dropout)
    self.head = nnx.Linear(feature_dim, num_classes, rngs=rngs)

  def features(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Images [B,28,28,1] in [0,1] -> penultimate features [B,feature_dim] (post-ReLU).

    `train` normalizes with the batch's statistics (and updates the running ones);
    otherwise the running statistics are used, so features do not depend on the batch.
    """
    h = x * 2.0 - 1.0
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      h = jax.nn.relu(norm(conv(h), use_running_average=not train))
      if (i + 1) % self.convs_per_stage == 0:
        h = nnx.max_pool(h, (2, 2), strides=(2, 2))
    return jax.nn.relu(self.feature(h.reshape(h.shape[0], -1)))

  def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """Logits [B,num_classes]; given an `rng` it is a training pass (dropout, batch statistics)."""
    h = self.features(x, train=rng is not None)
    if rng is not None:
      h = self.dropout(h, deterministic=False, rngs=rng)
    return self.head(h)


def augment(x: jax.Array, rng: jax.Array, max_shift: int = 2) -> jax.Array:
  """Random horizontal flips and shifts of up to `max_shift` pixels (zero padding), per image."""
  flip_key, shift_key = jax.random.split(rng)
  b, h, w, _ = x.shape
  flip = jax.random.bernoulli(flip_key, 0.5, (b, 1, 1, 1))
  x = jnp.where(flip, x[:, :, ::-1], x)
  padded = jnp.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
  offsets = jax.random.randint(shift_key, (b, 2), 0, 2 * max_shift + 1)
  crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
  return jax.vmap(crop)(padded, offsets)


CLASSIFIER_DEFAULTS = dict(channels=(32, 64, 64), convs_per_stage=1, feature_dim=128, num_classes=10, dropout=0.3,
                           augment=True, max_shift=2)


def build_classifier(model_config, image_shape=(28, 28, 1), rngs: nnx.Rngs | None = None) -> FeatureClassifier:
  """The network a `config.model` block describes, for images of `image_shape` (H, W, C)."""
  m = {**CLASSIFIER_DEFAULTS, **{k: v for k, v in dict(model_config).items() if k in CLASSIFIER_DEFAULTS}}
  return FeatureClassifier(channels=tuple(m["channels"]), convs_per_stage=m["convs_per_stage"],
                           feature_dim=m["feature_dim"], num_classes=m["num_classes"], dropout=m["dropout"],
                           image_size=image_shape[0], in_channels=image_shape[-1], rngs=rngs or rngs_lib.Rngs(0))


@register("classifier.fmnist", family="feature network")
class FeatureClassifierModel(Model):
  """Cross-entropy training of `FeatureClassifier`; eval reports per-example accuracy and loss.

  A `Model`, not a generative `Family`: the loop trains and evaluates it but draws no samples.
  """

  main_metric = "loss"

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(CLASSIFIER_DEFAULTS)
    return d

  def make_networks(self, rngs):
    return {"model": build_classifier(self.config.model, self.spec.shape, rngs)}

  def loss(self, model, batch, rng):
    aug_key, drop_key = jax.random.split(rng)
    x = batch["x"]
    if self.config.model.augment:
      x = augment(x, aug_key, self.config.model.max_shift)
    logits = model(x, drop_key)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    accuracy = (logits.argmax(-1) == batch["label"]).mean()
    return loss, {"accuracy": accuracy}

  def eval_step(self, state, batch, rng):
    logits = self.network(state)(batch["x"])
    return {"accuracy": (logits.argmax(-1) == batch["label"]).astype(jnp.float32),
            "loss": optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])}

  def features(self, state, x):
    """Penultimate features of images [B,28,28,1]: what FID-FMNIST compares."""
    return self.network(state).features(x)
