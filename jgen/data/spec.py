"""What a family knows about its data: a `DataSpec` made from the dataset, never guessed from names or shapes.

Every family is built as `Family(config, spec)`. The spec says what one example
is (kind, shape, dtype as the loader gives it), what labels or vocabulary it
has, and its likelihood space: how a likelihood of this data is measured
(see jgen.eval.likelihood for the conventions).

On the host images stay uint8 (a quarter of the bytes to move); the loop turns
them into float32 in [0, 1] on the device with `to_model_input`, inside its
jitted functions, so families always see images in [0, 1], points as float32 and
token ids as int32.
"""

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

KINDS = ("image", "points", "tokens")
# The likelihood spaces a dataset can default to; a family may choose another for images
# (a VAE's Bernoulli pixels: "binary"; diffusion's discretized decoder: "discrete_8bit").
SPACES = ("continuous_unit", "discrete_8bit", "binary", "tokens", "continuous")
IMAGE_SPACES = ("continuous_unit", "discrete_8bit", "binary")


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """One example of a dataset, as the loader gives it.

  kind: "image" ([H, W, C] uint8 on the host), "points" ([D] float32) or "tokens" ([T] int32).
  likelihood_space: the data's own convention ("continuous_unit" for 8-bit images, dequantized;
  "continuous" for points; "tokens"); a family may declare another for images.
  """

  kind: str
  shape: tuple[int, ...]
  dtype: str
  num_classes: int = 0
  vocab_size: int = 0
  likelihood_space: str = "continuous"
  # Tokens: the character of each id (jgen.data.text.Vocab), so a trained run decodes without its data.
  vocab: str = ""

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"DataSpec kind {self.kind!r} is not one of {KINDS}")
    if self.likelihood_space not in SPACES:
      raise ValueError(f"likelihood space {self.likelihood_space!r} is not one of {SPACES}")
    object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

  @property
  def dims(self) -> int:
    """Dimensions of one example (D of bits/dim)."""
    return math.prod(self.shape)

  @property
  def is_image(self) -> bool:
    return self.kind == "image"

  def example_batch(self, batch_size: int = 2) -> dict[str, np.ndarray]:
    """Zeros shaped like a loader batch (for building abstract states without data)."""
    return {"x": np.zeros((batch_size, *self.shape), self.dtype), "label": np.zeros((batch_size,), np.int32)}

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: dict) -> "DataSpec":
    return cls(**{**d, "shape": tuple(d["shape"])})


def to_model_input(batch: dict) -> dict:
  """Loader batch -> what families see: uint8 images become float32 in [0, 1]; the rest as given.

  Runs inside jitted code (on the device); a float batch passes unchanged, so tests and
  tools may feed families [0, 1] floats directly.
  """
  def convert(x):
    if x.dtype == jnp.uint8:
      return x.astype(jnp.float32) / 255.0
    return x
  return {k: convert(v) if k == "x" else v for k, v in batch.items()}


def from_dataset(data_config) -> DataSpec:
  """The spec of `config.data`'s dataset (from its static facts, without reading the data)."""
  from jgen.data import sources

  info = sources.info(data_config.name, source_dir=data_config.source_dir or None)
  kind = info["kind"]
  if kind == "image":
    space = "continuous_unit"
  elif kind == "tokens":
    space = "tokens"
  else:
    space = "continuous"
  dtype = {"image": "uint8", "points": "float32", "tokens": "int32"}[kind]
  if kind == "image" and info.get("dtype", "uint8") != "uint8":
    dtype = "float32"
  return DataSpec(kind=kind, shape=tuple(info["shape"]), dtype=dtype, num_classes=int(info.get("num_classes") or 0),
                  vocab_size=int(info.get("vocab_size") or 0), likelihood_space=space, vocab=info.get("vocab", ""))
