"""Every config field and its default, in one place.

A config file states only what differs from these: the loader merges the file
onto the defaults of the blocks below and of its model (`Family.defaults()`),
then locks the result, so an unknown key in a file is the same one-line error
as in `--set`. Families read fields as attributes (`config.train.steps`), never
with a fallback default.
"""

import ml_collections

DATA = dict(
    name="",
    batch_size=128,  # per update; the loop reads batch_size * train.batches_per_step examples a step
    eval_batch_size=0,  # 0: the training batch size
    source_dir="",  # raw files of a local dataset (Fashion-MNIST IDX directory); "" = the default place
    validation_size=-1,  # examples carved from the end of train for validation; -1 = the dataset's default
    outlier_fraction=0.0,  # deterministic gross outliers in the training split (robust models)
    outlier_scale=10.0,
)

TRAIN = dict(
    steps=1000,
    seed=0,
    log_every=100,
    eval_every=1000,  # evaluation on the validation split; 0 = only at the last step
    eval_batches=-1,  # -1 = the whole validation split
    evals="",  # in-loop evaluators at eval steps, e.g. "fid:2000,pr:2000" (FID-FMNIST on N samples)
    ckpt_every=1000,
    keep=3,  # newest checkpoints kept (the best by the main metric is kept besides)
    sample_num=64,  # samples in each eval step's grid
    batches_per_step=1,  # k > 1 stacks k batches [k, B, ...] into one step (n-critic GAN updates)
    steps_per_call=1,  # s > 1 runs s steps in one jitted call (a scan over s stacked batches): fewer dispatches
)

MESH = dict(data=-1, fsdp=1)

OPTIM = dict(
    name="adam",
    lr=1e-3,
    b1=0.9,
    b2=0.999,
    weight_decay=1e-4,  # adamw only
    momentum=0.0,  # sgd only
    grad_clip=0.0,  # global-norm clipping; 0 = off
    warmup_steps=0,
    decay="constant",  # or "cosine" over decay_steps
    decay_steps=0,
    ema_decay=0.0,  # > 0 keeps an EMA of the weights, used for sampling and evaluation
)


def optim_block(**overrides) -> dict:
  """One network's optimizer block with some fields changed."""
  unknown = set(overrides) - set(OPTIM)
  if unknown:
    raise ValueError(f"unknown optim fields {sorted(unknown)}")
  return {**OPTIM, **overrides}


def common_blocks() -> ml_collections.ConfigDict:
  """The blocks every run has: data, train, mesh."""
  return ml_collections.ConfigDict({"data": dict(DATA), "train": dict(TRAIN), "mesh": dict(MESH)})


def experiment(*, model: dict, data: dict, train: dict, optim: dict | None = None,
               mesh: dict | None = None) -> ml_collections.ConfigDict:
  """A config file's `get_config` result: only the fields that differ from the defaults."""
  blocks = {"model": model, "data": data, "train": train}
  if optim is not None:
    blocks["optim"] = optim
  if mesh is not None:
    blocks["mesh"] = mesh
  return ml_collections.ConfigDict(blocks)


def check_variant(arg: str, variants=("smoke", "full")) -> str:
  if arg not in variants:
    raise ValueError(f"unknown variant {arg!r}; use {', '.join(variants)}")
  return arg
