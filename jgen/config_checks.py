"""Value rules for config fields, checked when a config is loaded (not deep inside a model).

Types are checked field by field as values are set (jgen.config); this module checks
ranges and choices: sizes are positive, probabilities and decays lie in [0, 1), the
optimizer and its schedule are ones jgen builds, and a family's string options are
among its declared `choices`. Model sizes follow one naming rule: an integer field
(or a non-empty tuple of them) named like a size (`*_dim`, `*channels*`, `hidden`,
`depth`, `features`, `kernel`, `num_*`, `*_steps`, `*_iters`, `*_blocks`, `*_layers`,
...) must be >= 1; `*timesteps` may be 0 ("all of them"). Rules that tie several fields
of one model together are the family's own (`Model.check_model`).
"""

import math
import re

import ml_collections

from jgen.errors import UserError

OPTIM_CHOICES = {"name": ("adam", "adamw", "sgd"), "decay": ("constant", "cosine")}

# field -> (test, what it must be)
_AT_LEAST_1 = (lambda v: v >= 1, ">= 1")
_AT_LEAST_0 = (lambda v: v >= 0, ">= 0")
_POSITIVE = (lambda v: v > 0 and math.isfinite(v), "a positive number")
_UNIT = (lambda v: 0 <= v < 1, "in [0, 1)")

COMMON_RULES = {
    "data.batch_size": _AT_LEAST_1,
    "data.eval_batch_size": (lambda v: v >= 0, ">= 0 (0: the training batch size)"),
    "data.validation_size": (lambda v: v >= -1, ">= 0, or -1 for the dataset's default"),
    "data.outlier_fraction": _UNIT,
    "data.outlier_scale": _POSITIVE,
    "mesh.data": (lambda v: v == -1 or v >= 1, ">= 1, or -1 for all devices"),
    "mesh.fsdp": _AT_LEAST_1,
    "train.steps": _AT_LEAST_0,
    "train.seed": (lambda v: 0 <= v < 2**32, "in 0..2**32-1 (numpy and grain seeds)"),
    "train.log_every": (lambda v: v >= 0, ">= 0 (0: never)"),
    "train.eval_every": (lambda v: v >= 0, ">= 0 (0: only at the end)"),
    "train.ckpt_every": (lambda v: v >= 0, ">= 0 (0: only at the end)"),
    "train.keep": _AT_LEAST_1,
    "train.batches_per_step": _AT_LEAST_1,
    "train.steps_per_call": _AT_LEAST_1,
    "train.sample_num": (lambda v: v >= 0, ">= 0 (0: no sample grids)"),
    "train.eval_batches": (lambda v: v >= 1 or v == -1, ">= 1, or -1 for the whole split"),
}

OPTIM_RULES = {
    "lr": _POSITIVE,
    "b1": _UNIT,
    "b2": _UNIT,
    "ema_decay": (lambda v: 0 <= v < 1, "in [0, 1) (0: no EMA)"),
    "grad_clip": (lambda v: v >= 0 and math.isfinite(v), ">= 0 (0: no clipping)"),
    "weight_decay": _AT_LEAST_0,
    "momentum": _UNIT,
    "warmup_steps": _AT_LEAST_0,
    "decay_steps": _AT_LEAST_0,
}

MODEL_RULES = {
    "dropout": _UNIT,
    "p_uncond": _UNIT,
    "beta": _AT_LEAST_0,
    "kl_warmup_steps": (lambda v: v >= 0, ">= 0 (0: no warm-up)"),
    "reg_covar": _AT_LEAST_0,
    "min_noise": _AT_LEAST_0,
    "ddim_eta": _AT_LEAST_0,
    "guidance": _AT_LEAST_0,
    "weight_concentration": _AT_LEAST_0,
    "nu": _POSITIVE,
    "max_shift": _AT_LEAST_0,
    "temperature": _POSITIVE,
}

_SIZE_NAME = re.compile(r"(^|_)(dim|hidden|depth|heads|components|steps|iters|restarts|blocks|layers|stage|classes"
                        r"|mults|features|kernel)$|channels|^num_")


def _numbers(value):
  values = value if isinstance(value, (tuple, list)) else (value,)
  return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _check(key: str, value, rule) -> None:
  test, must = rule
  for v in _numbers(value):
    if isinstance(v, float) and math.isnan(v) or not test(v):
      raise UserError(f"config {key}={value!r}: must be {must}")


def _optim_blocks(optim: ml_collections.ConfigDict):
  """The optimizer blocks: `optim` itself, and per-network sub-blocks (`optim.gen`, `optim.disc`)."""
  yield "optim", optim
  for name, value in optim.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield f"optim.{name}", value


def check_values(config: ml_collections.ConfigDict, choices: dict | None = None) -> None:
  """Raises a one-line UserError for the first field out of its range or choices."""
  for key, rule in COMMON_RULES.items():
    block, field = key.split(".")
    if block in config and field in config[block]:
      _check(key, config[block][field], rule)
  for prefix, block in _optim_blocks(config.optim) if "optim" in config else ():
    for field, allowed in OPTIM_CHOICES.items():
      if field in block and block[field] not in allowed:
        raise UserError(f"config {prefix}.{field}={block[field]!r}: choose one of {', '.join(allowed)}")
    for field, rule in OPTIM_RULES.items():
      if field in block:
        _check(f"{prefix}.{field}", block[field], rule)
    # optax's warmup-cosine schedule counts the warm-up inside decay_steps, so it needs more than the warm-up.
    if block.get("decay") == "cosine" and block.decay_steps <= max(block.warmup_steps, 1):
      raise UserError(f"config {prefix}.decay_steps={block.decay_steps}: with {prefix}.decay='cosine' it must "
                      f"exceed {prefix}.warmup_steps ({block.warmup_steps}) and 1: set it to the steps the lr "
                      f"decays over, e.g. train.steps")
  for field, value in config.model.items():
    key = f"model.{field}"
    if field in (choices or {}) and value not in choices[field]:
      raise UserError(f"config {key}={value!r}: choose one of {', '.join(map(str, choices[field]))}")
    if field in MODEL_RULES:
      _check(key, value, MODEL_RULES[field])
    elif "timesteps" in field:
      _check(key, value, (lambda v: v >= 0, ">= 0 (0: all of them)"))
    elif _SIZE_NAME.search(field) and all(isinstance(v, int) for v in _numbers(value)):
      if isinstance(value, (tuple, list)) and not value:
        raise UserError(f"config {key}=(): give at least one size, e.g. {key}=(32,)")
      _check(key, value, _AT_LEAST_1)
