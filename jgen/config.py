"""Loading experiment configs: `path.py[:variant]`, `--set key=value` overrides, validation.

A config file defines `get_config(arg)` returning an `ml_collections.ConfigDict`;
the text after the colon is passed as `arg` (the variant: `smoke`, `full`, ...).
Overrides are type-checked against the field they replace, so a typo or a wrong
type is one clear error instead of a silently ignored setting.
"""

import ast
import difflib
import importlib.util
import json
import os
import pathlib

import ml_collections

from jgen.errors import UserError

# `optim` is required only by families trained by gradients (they read config.optim).
REQUIRED_BLOCKS = ("model", "data", "train")


def _split_spec(spec: str) -> tuple[str, str | None]:
  path, sep, variant = spec.rpartition(":")
  if not sep or not path.endswith(".py"):
    return spec, None
  return path, variant


def load(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
  """Loads `CONFIG.py[:VARIANT]`, applies `key=value` overrides, validates, returns it locked."""
  path, variant = _split_spec(spec)
  if not os.path.isfile(path):
    raise UserError(f"config file {path!r} not found: give the path of a configs/<family>/<model>_<dataset>.py file "
                    f"(`jgen list` shows them)")
  module_spec = importlib.util.spec_from_file_location(f"jgen_config_{pathlib.Path(path).stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # a broken config file is the user's to fix; say where
    raise UserError(f"config file {path!r} failed to load: {type(e).__name__}: {e}") from None
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path!r} defines no get_config(arg) function")
  try:
    config = module.get_config(variant) if variant is not None else module.get_config()
  except ValueError as e:
    raise UserError(f"config {path!r}: {e}") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"config file {path!r}: get_config must return an ml_collections.ConfigDict")
  config.unlock()
  config.config_file = os.path.abspath(path)
  config.variant = variant or ""
  config.lock()
  apply_overrides(config, overrides)
  validate(config)
  return config


def _parse_value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text  # a bare word is a string: --set data.name=digits


def _all_keys(config, prefix="") -> list[str]:
  keys = []
  for k, v in config.items():
    keys.append(prefix + k)
    if isinstance(v, ml_collections.ConfigDict):
      keys.extend(_all_keys(v, prefix + k + "."))
  return keys


def nearest_keys(config: ml_collections.ConfigDict, key: str, n: int = 3) -> list[str]:
  """Valid keys a mistyped `key` most likely meant: similar names, and abbreviations (lr for learning_rate)."""
  keys = _all_keys(config)
  *parents, leaf = key.split(".")

  def initials(name):
    return "".join(word[:1] for word in name.split("_"))

  def score(candidate):
    *c_parents, c_leaf = candidate.split(".")
    similarity = difflib.SequenceMatcher(None, leaf, c_leaf).ratio()
    if initials(leaf) == c_leaf or initials(c_leaf) == leaf:
      similarity = max(similarity, 0.9)
    return similarity + (0.5 if c_parents == parents else 0.0)

  ranked = sorted(keys, key=score, reverse=True)
  return [k for k in ranked[:n] if score(k) >= 0.6]


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> None:
  """Applies `a.b=value` overrides in place; unknown keys and wrong types are UserErrors."""
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep or not key:
      raise UserError(f"--set {item!r} is not of the form key=value (e.g. --set optim.lr=3e-4)")
    *parents, leaf = key.split(".")
    node = config
    for part in parents + [leaf]:
      parent_node = node
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        near = nearest_keys(config, key)
        hint = f"; nearest valid keys: {', '.join(near)}" if near else ""
        raise UserError(f"--set {key}: no such config key{hint}")
      node = node[part]
    old, value = node, _parse_value(text)
    if isinstance(old, ml_collections.ConfigDict):
      raise UserError(f"--set {key}: {key} is a block, set one of its fields (e.g. {key}.{next(iter(old), 'name')})")
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if isinstance(old, (list, tuple)) and isinstance(value, (list, tuple)):
      value = type(old)(value)
    if old is not None and not (type(value) is type(old)):
      raise UserError(f"--set {key}={text}: expected {type(old).__name__} (like {old!r}), got {type(value).__name__}")
    try:
      parent_node[leaf] = value
    except (TypeError, ValueError) as e:
      raise UserError(f"--set {key}={text}: {e}") from None


def validate(config: ml_collections.ConfigDict) -> None:
  for block in REQUIRED_BLOCKS:
    if block not in config:
      raise UserError(f"config {config.get('config_file', '')!r} has no {block!r} block; every config needs "
                      f"{', '.join(REQUIRED_BLOCKS)}")
  if "name" not in config.model:
    raise UserError("config.model.name is missing: name the registered model (see `jgen list`)")
  train = config.train
  for field in ("steps", "log_every", "eval_every", "ckpt_every"):
    if train.get(field, 1) < 0:
      raise UserError(f"config.train.{field} must be >= 0, got {train.get(field)}")
  if config.data.get("batch_size", 1) <= 0:
    raise UserError(f"config.data.batch_size must be positive, got {config.data.batch_size}")


def to_json(config: ml_collections.ConfigDict) -> str:
  return config.to_json_best_effort(sort_keys=True, indent=2)


def from_json(text: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(json.loads(text))
