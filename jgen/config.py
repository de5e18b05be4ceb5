"""Loading experiment configs: `path.py[:variant]`, `--set key=value` overrides, validation.

A config file defines `get_config(arg)` returning an `ml_collections.ConfigDict`;
the text after the colon is passed as `arg` (the variant: `smoke`, `full`, ...).
The file's values are merged onto every field's default (jgen.config_schema and
the model's `Family.defaults()`), and overrides after them; both are type-checked
against the field they replace, so a typo or a wrong type, in the file or in
`--set`, is one clear error instead of a silently ignored setting.
"""

import ast
import difflib
import importlib.util
import json
import os
import pathlib

import ml_collections

from jgen import config_schema
from jgen.errors import UserError

# Blocks a config file must give; the others (mesh, optim) have complete defaults.
REQUIRED_BLOCKS = ("model", "data", "train")


def _split_spec(spec: str) -> tuple[str, str | None]:
  path, sep, variant = spec.rpartition(":")
  if not sep or not path.endswith(".py"):
    return spec, None
  return path, variant


def _load_file(path: str, variant: str | None) -> ml_collections.ConfigDict:
  if os.path.isdir(path):
    raise UserError(f"config {path!r} is a directory: give a CONFIG.py[:VARIANT] file in it (`jgen list` shows them)")
  if not os.path.isfile(path):
    raise UserError(f"config file {path!r} not found: give the path of a configs/<family>/<model>_<dataset>.py file "
                    f"(`jgen list` shows them)")
  if not path.endswith(".py"):
    raise UserError(f"config file {path!r} is not a Python file: give CONFIG.py[:VARIANT]")
  module_spec = importlib.util.spec_from_file_location(f"jgen_config_{pathlib.Path(path).stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except (Exception, SystemExit) as e:  # a broken config file is the user's to fix; say where
    raise UserError(f"config file {path!r} failed to load: {type(e).__name__}: {e}") from None
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path!r} defines no get_config(arg) function")
  try:
    config = module.get_config(variant) if variant is not None else module.get_config()
  except TypeError as e:
    if variant is not None and "positional argument" in str(e):
      raise UserError(f"config {path!r}: get_config() takes no variant; drop ':{variant}'") from None
    raise UserError(f"config {path!r}: get_config failed: TypeError: {e}") from None
  except ValueError as e:  # check_variant's message names the variants
    raise UserError(f"config {path!r}: {e}") from None
  except (Exception, SystemExit) as e:  # a broken config file is the user's to fix; say where
    raise UserError(f"config {path!r}: get_config failed: {type(e).__name__}: {e}") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"config file {path!r}: get_config must return an ml_collections.ConfigDict")
  return config


def defaults_for(model_name: str) -> ml_collections.ConfigDict:
  """Every field a config of `model_name` may set, with its default (common blocks + the model's own)."""
  from jgen import registry

  config = config_schema.common_blocks()
  own = registry.lookup(model_name).cls.defaults()
  for block, value in own.items():
    config[block] = value
  config.model.name = model_name
  config.config_file = ""  # filled in by `load`: where the run's config came from
  config.variant = ""
  return config


def load(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
  """Loads `CONFIG.py[:VARIANT]` onto its model's defaults, applies `key=value` overrides, validates,
  and returns it locked. Unknown keys, in the file or in an override, are one-line UserErrors."""
  path, variant = _split_spec(spec)
  given = _load_file(path, variant)
  for block in REQUIRED_BLOCKS:
    if block not in given:
      raise UserError(f"config {path!r} has no {block!r} block; every config needs {', '.join(REQUIRED_BLOCKS)}")
    if not isinstance(given[block], ml_collections.ConfigDict):
      raise UserError(f"config {path!r}: {block} must be a block of fields (a dict), got "
                      f"{type(given[block]).__name__}")
  if "name" not in given.model:
    raise UserError(f"config {path!r}: model.name is missing: name the registered model (see `jgen list`)")
  if not isinstance(given.model.name, str):
    raise UserError(f"config {path!r}: model.name={given.model.name!r} must be a model's name (see `jgen list`)")
  config = defaults_for(given.model.name)
  merge(config, given, f"config file {path}")
  config.config_file = os.path.abspath(path)
  config.variant = variant or ""
  config.lock()
  apply_overrides(config, overrides)
  if config.model.name != given.model.name:
    _check_model_swap(given.model.name, config.model.name)
  validate(config)
  return config


def _check_model_swap(old: str, new: str) -> None:
  """`--set model.name=NEW` on a config of OLD works only where NEW has exactly OLD's fields (pixelcnn and
  pixelcnn.gated): the config was merged onto OLD's defaults, which another model would not read."""
  old_keys, new_keys = set(_all_keys(defaults_for(old))), set(_all_keys(defaults_for(new)))
  if old_keys != new_keys:
    differ = sorted(old_keys ^ new_keys)
    raise UserError(f"--set model.name={new}: {new} has other config fields than {old} (e.g. "
                    f"{', '.join(differ[:3])}); use a config file of {new} (`jgen list` shows them)")


def _flatten(config: ml_collections.ConfigDict, prefix: str = ""):
  for k, v in config.items():
    if isinstance(v, ml_collections.ConfigDict):
      yield from _flatten(v, prefix + k + ".")
    else:
      yield prefix + k, v


def merge(config: ml_collections.ConfigDict, given: ml_collections.ConfigDict, source: str) -> None:
  """Sets every leaf of `given` on `config` (which holds the defaults), type-checked; unknown keys are errors."""
  for key, value in _flatten(given):
    set_field(config, key, value, source, text=repr(value))


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


def set_field(config: ml_collections.ConfigDict, key: str, value, source: str, text: str) -> None:
  """Sets `a.b` to `value` where the field exists and the type fits; else a one-line UserError from `source`."""
  *parents, leaf = key.split(".")
  node = config
  for part in parents + [leaf]:
    parent_node = node
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      near = nearest_keys(config, key)
      hint = f"; nearest valid keys: {', '.join(near)}" if near else ""
      raise UserError(f"{source}: {key}: no such config key{hint}")
    node = node[part]
  old = node
  if isinstance(old, ml_collections.ConfigDict):
    raise UserError(f"{source}: {key} is a block, set one of its fields (e.g. {key}.{next(iter(old), 'name')})")
  if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if isinstance(old, (list, tuple)) and isinstance(value, (list, tuple)):
    value = type(old)(value)
  if old is not None and not (type(value) is type(old)):
    raise UserError(f"{source}: {key}={text}: expected {type(old).__name__} (like {old!r}), got {type(value).__name__}")
  try:
    parent_node[leaf] = value
  except (TypeError, ValueError) as e:
    raise UserError(f"{source}: {key}={text}: {e}") from None


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> None:
  """Applies `a.b=value` overrides in place; unknown keys and wrong types are UserErrors."""
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep or not key:
      raise UserError(f"--set {item!r} is not of the form key=value (e.g. --set optim.lr=3e-4)")
    set_field(config, key, _parse_value(text), "--set", text)


def validate(config: ml_collections.ConfigDict) -> None:
  """Ranges and choices of every field (jgen.config_checks), and the in-loop evaluators."""
  from jgen import config_checks, registry

  cls = registry.lookup(config.model.name).cls
  config_checks.check_values(config, getattr(cls, "choices", {}))
  try:
    cls.check_model(config.model)
  except ValueError as e:  # the family's rules tying several of its fields together
    raise UserError(f"config {e}") from None
  parse_evals(config.train.evals)


def parse_evals(text: str) -> dict[str, int]:
  """`train.evals` "fid:2000,pr:2000" -> {"fid": 2000, "pr": 2000}: in-loop evaluators and their sample counts."""
  from jgen.eval.in_loop import EVALUATORS

  out = {}
  for item in filter(None, (part.strip() for part in text.split(","))):
    name, sep, n = item.partition(":")
    if name not in EVALUATORS or not sep or not n.isdigit() or int(n) < 2:
      raise UserError(f"config.train.evals: {item!r} is not NAME:N with NAME one of {', '.join(EVALUATORS)} "
                      f"and N >= 2 samples (e.g. train.evals='fid:2000')")
    out[name] = int(n)
  return out


def to_json(config: ml_collections.ConfigDict) -> str:
  return config.to_json_best_effort(sort_keys=True, indent=2)


def from_json(text: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(json.loads(text))
