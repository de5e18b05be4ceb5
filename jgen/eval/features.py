"""The shipped FID-FMNIST feature network: export a trained classifier, load it, embed images.

Retrain and ship it with
  jgen train configs/eval/fmnist_classifier.py:full --workdir runs/fmnist_classifier
  python -m jgen.eval.features runs/fmnist_classifier   # writes jgen/assets/fmnist_classifier.npz

The asset jgen/assets/fmnist_classifier.npz holds the classifier's parameters and
batch statistics (one array per leaf, keyed by its path in the NNX state) plus
the `config.model` block it was built from, so loading needs no checkpoint
machinery. Its penultimate layer (`feature_dim` post-ReLU units) is the feature
space of FID-FMNIST, KID-FMNIST and precision/recall.
"""

import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from jgen.errors import UserError
from jgen.families.feature_classifier import build_classifier
from jgen.train.compile_options import step_jit

ASSET_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                          "fmnist_classifier.npz")
IMAGE_SHAPE = (28, 28, 1)


def _name(prefix: str, path) -> str:
  """"params/convs/0/kernel" for a leaf path, whether or not the leaf sits in an nnx.Variable's `.value`."""
  parts = [prefix]
  for entry in path:
    if isinstance(entry, jax.tree_util.DictKey):
      parts.append(str(entry.key))
    elif isinstance(entry, jax.tree_util.SequenceKey):
      parts.append(str(entry.idx))
    elif isinstance(entry, jax.tree_util.GetAttrKey) and entry.name != "value":
      parts.append(entry.name)
  return "/".join(parts)


def _flat(tree, prefix: str) -> dict[str, np.ndarray]:
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {_name(prefix, path): np.asarray(leaf) for path, leaf in leaves}


def export_feature_network(state, model_config, path: str = ASSET_PATH, meta: dict | None = None) -> str:
  """Writes a trained `classifier.fmnist` TrainState's params and batch statistics to an .npz asset."""
  arrays = {**_flat(jax.device_get(state.params["model"]), "params"),
            **_flat(jax.device_get(state.model_state["model"]), "rest")}
  info = {"model": model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config),
          **(meta or {})}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:  # a file object keeps numpy from appending a second ".npz"
    np.savez_compressed(f, __info__=np.array(json.dumps(info)), **arrays)
  return path


class FeatureNetwork:
  """Callable: images float [N,28,28,1] in [0,1] -> features float32 [N,F], in fixed-size jitted batches."""

  def __init__(self, model: nnx.Module, info: dict, batch_size: int = 500):
    self.info = info
    self.batch_size = batch_size
    self.graphdef, self.state = nnx.split(model)
    self.feature_dim = int(info["model"].get("feature_dim", 128))
    self._features = step_jit(lambda state, x: nnx.merge(self.graphdef, state).features(x))
    self._logits = step_jit(lambda state, x: nnx.merge(self.graphdef, state)(x))

  def _batched(self, fn, images) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
      raise ValueError(f"the FID-FMNIST network takes images [N,28,28,1] in [0,1], got shape {images.shape}")
    out = []
    for start in range(0, images.shape[0], self.batch_size):
      chunk = images[start:start + self.batch_size]
      n = chunk.shape[0]
      if n < self.batch_size:  # pad so every call reuses one compiled shape
        chunk = np.concatenate([chunk, np.zeros((self.batch_size - n,) + IMAGE_SHAPE, np.float32)])
      out.append(np.asarray(fn(self.state, jnp.asarray(chunk)))[:n])
    return np.concatenate(out) if out else np.zeros((0, self.feature_dim), np.float32)

  def __call__(self, images) -> np.ndarray:
    return self._batched(self._features, images)

  def logits(self, images) -> np.ndarray:
    return self._batched(self._logits, images)


def load_feature_network_from(path: str, batch_size: int = 500) -> FeatureNetwork:
  if not os.path.isfile(path):
    raise UserError(f"FID-FMNIST feature network not found at {path}: train it with "
                    "`jgen train configs/eval/fmnist_classifier.py:full --workdir DIR` and export it "
                    "with jgen.eval.features.export_feature_network")
  with np.load(path) as data:
    info = json.loads(str(data["__info__"]))
    arrays = {k: data[k] for k in data.files if k != "__info__"}
  # Built abstract: every array comes from the file, so drawing initial values (and compiling the draws) is waste.
  model = nnx.eval_shape(lambda: build_classifier(ml_collections.ConfigDict(info["model"]), IMAGE_SHAPE))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  restored = []
  for prefix, tree in (("params", params), ("rest", rest)):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    values = []
    for key, leaf in leaves:
      name = _name(prefix, key)
      if name not in arrays or arrays[name].shape != np.shape(leaf):
        raise UserError(f"{path} does not match the classifier it describes (entry {name}); export it again")
      values.append(jnp.asarray(arrays[name]))
    restored.append(jax.tree_util.tree_unflatten(treedef, values))
  return FeatureNetwork(nnx.merge(graphdef, *restored), info, batch_size)


@functools.lru_cache(maxsize=1)
def load_feature_network(batch_size: int = 500) -> FeatureNetwork:
  """The shipped network (cached): `load_feature_network()(images) -> features [N, F]`."""
  return load_feature_network_from(ASSET_PATH, batch_size)


def export_workdir(workdir: str, path: str = ASSET_PATH) -> str:
  """Exports the newest checkpoint of a `classifier.fmnist` run to the asset and prints its test accuracy."""
  from jgen.data.builders import read_fashion_mnist
  from jgen.train.checkpoint import restore_for_inference

  config, family, state = restore_for_inference(workdir)
  if config.model.name != "classifier.fmnist":
    raise UserError(f"{workdir} is a run of {config.model.name}, not of classifier.fmnist")
  # Measured before writing, so the asset records the accuracy it was shown to reach.
  images, labels = read_fashion_mnist("test", config.data.source_dir or None)
  net = FeatureNetwork(family.network(state), {"model": config.model.to_dict()})
  accuracy = float((net.logits(images.astype(np.float32) / 255.0).argmax(1) == labels).mean())
  export_feature_network(state, config.model, path, meta={
      "step": int(jax.device_get(state.step)), "train_steps": int(config.train.steps), "test_accuracy": accuracy})
  print(f"wrote {path} ({os.path.getsize(path)} bytes); test accuracy {accuracy:.4f}")
  return path


if __name__ == "__main__":
  import sys

  export_workdir(*sys.argv[1:3])
