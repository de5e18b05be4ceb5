"""`jgen sample`: a trained run's samples as an image grid (or a per-class grid), or prompted text.

Bad input ends in one line on stderr and exit code 2, with nothing written.
"""

from jgen.errors import UserError

# The most samples one grid holds (a 100 x 100 grid); the files text samples can be written as.
MAX_GRID_SAMPLES = 10_000
TEXT_SUFFIXES = (".txt",)
# The longest text one `jgen sample --length` draws, and the most characters of one call (the KV cache grows
# with both).
MAX_TEXT_LENGTH = 100_000
MAX_TEXT_TOTAL = 1_000_000


def cmd_sample(args):
  import jax

  from jgen.cli import IMAGE_SUFFIXES, check_output_file

  from jgen import config as config_lib
  from jgen import registry
  from jgen.eval import plots
  from jgen.train import checkpoint
  from jgen.train.sampling import Sampler

  if not 0 < args.num <= MAX_GRID_SAMPLES:
    raise UserError(f"--num must be in 1..{MAX_GRID_SAMPLES} (one PNG grid), got {args.num}; for sample "
                    f"statistics over more, use `jgen evaluate --num-samples N`")
  if not 0 <= args.seed < 2**32:
    raise UserError(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
  if args.out is not None:
    check_output_file(args.out, "--out", IMAGE_SUFFIXES + TEXT_SUFFIXES)
  if args.length is not None and not 0 < args.length <= MAX_TEXT_LENGTH:
    raise UserError(f"--length must be in 1..{MAX_TEXT_LENGTH}, got {args.length}")
  given = {}
  for item in args.kw or []:
    key, sep, text = item.partition("=")
    if not sep or not key:
      raise UserError(f"--kw {item!r} is not of the form key=value (e.g. --kw label=3 --kw guidance=2.0)")
    given[key] = text
  if args.length is not None:
    given["length"] = str(args.length)
  saved = checkpoint.read_config(args.workdir)
  options = getattr(registry.lookup(saved.model.name).cls, "sample_options", {})
  overrides = [f"{options[k]}={v}" for k, v in given.items() if k in options]
  _check_sample_options(saved, {k: v for k, v in given.items() if k in options}, options)
  config, family, state = checkpoint.restore_for_inference(args.workdir, args.checkpoint, overrides)
  if not family.generative:
    raise UserError(f"{config.model.name} is not a generative model: it has nothing to sample")
  if family.spec.kind == "tokens":
    return _sample_text(args, config, family, state, {k: v for k, v in given.items() if k not in options})
  if args.prompt is not None or args.length is not None:
    raise UserError(f"--prompt and --length are for text models; {config.model.name} samples {family.spec.kind}")
  if args.out is None or not args.out.lower().endswith(IMAGE_SUFFIXES):
    raise UserError(f"--out: give the grid's file, ending in {', '.join(IMAGE_SUFFIXES)} "
                    f"({config.model.name} samples {family.spec.kind})")
  cond = {k: config_lib._parse_value(v) for k, v in given.items() if k not in options}
  unknown = sorted(set(cond) - set(family.conditions))
  if unknown:
    allowed = ", ".join(list(family.conditions) + list(options)) or "none"
    raise UserError(f"--kw {', '.join(unknown)}: {config.model.name} takes no such condition or option "
                    f"(it takes: {allowed})")
  if "label" in cond:
    label = cond["label"]
    if not isinstance(label, int) or not 0 <= label < family.spec.num_classes:
      raise UserError(f"--kw label={label}: give a class index 0..{family.spec.num_classes - 1}")
    cond["label"] = [label] * args.num
  guidance = cond.get("guidance", 0.0)
  if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 <= guidance < float("inf"):
    raise UserError(f"--kw guidance={guidance!r}: give a number >= 0 (0: no guidance)")
  sampler = Sampler(family)
  key = jax.random.key(args.seed)
  if args.per_class is not None:
    return _sample_per_class(args, config, family, state, sampler, key, cond)
  try:
    x = sampler.to_host(sampler(state, key, args.num, cond) if cond else sampler.default(state, key, args.num))
  except (TypeError, ValueError) as e:
    raise UserError(f"{config.model.name} cannot sample with {given}: {e}") from None
  if family.spec.is_image:
    plots.save_image_grid(x.clip(0.0, 1.0), args.out, title=f"{config.model.name} samples")
  else:
    plots.save_points(x, args.out)
  print(f"wrote {args.num} samples of {config.model.name} to {args.out}")


def _sample_per_class(args, config, family, state, sampler, key, cond: dict) -> None:
  """One row per class, --per-class samples each, rows labelled with the class names."""
  from jgen.data.classes import class_names
  from jgen.eval import plots
  from jgen.train.sampling import per_class

  if "label" not in family.conditions:
    raise UserError(f"--per-class draws under each label; {config.model.name} takes no label condition")
  if "label" in cond:
    raise UserError("--per-class draws every label in turn: leave out --kw label")
  if not 1 <= args.per_class <= 64:
    raise UserError(f"--per-class {args.per_class}: give 1..64 samples per class")
  x, _ = per_class(sampler, state, key, args.per_class)
  names = class_names(config.data.name, family.spec.num_classes) or list(range(family.spec.num_classes))
  plots.save_image_table(x.clip(0.0, 1.0), args.out, row_labels=[str(v) for v in names],
                         title=f"{config.model.name}: one row per class")
  print(f"wrote {x.shape[0]} x {x.shape[1]} samples of {config.model.name} (one row per class) to {args.out}")


def _sample_text(args, config, family, state, conditions: dict) -> None:
  """Prompted text: prints the samples (and writes them to --out, a .txt file)."""
  import jax
  import numpy as np

  from jgen.data.text import Vocab
  from jgen.train.sampling import Sampler

  if conditions:
    raise UserError(f"--kw {', '.join(sorted(conditions))}: {config.model.name} takes no such condition; give the "
                    f"start of the text with --prompt and sampler options with --kw "
                    f"{', '.join(f'{k}=...' for k in family.sample_options)}")
  if args.out is not None and not args.out.lower().endswith(TEXT_SUFFIXES):
    raise UserError(f"--out {args.out!r}: {config.model.name} samples text; give a file name ending in .txt")
  vocab = Vocab(family.spec.vocab)
  prompt = args.prompt or ""
  total = args.num * (len(prompt) + family.config.model.sample_length)
  if total > MAX_TEXT_TOTAL:
    raise UserError(f"--num x (prompt + --length) is {total:,} characters; draw at most {MAX_TEXT_TOTAL:,} in one "
                    f"call (fewer or shorter samples)")
  unknown = vocab.unknown(prompt)
  if unknown:
    raise UserError(f"--prompt holds characters the model's vocabulary lacks: {''.join(unknown)!r}; use only "
                    f"characters of its training text")
  sampler = Sampler(family)
  ids = sampler.to_host(sampler(state, jax.random.key(args.seed), args.num, {"prompt": vocab.encode(prompt)}))
  texts = [vocab.decode(row, show_ends=True) for row in np.asarray(ids)]
  shown = "".join(f"--- sample {i} ---\n{t}\n" for i, t in enumerate(texts))
  print(shown, end="")
  if args.out is not None:
    with open(args.out, "w", encoding="utf-8") as f:
      f.write(shown)
    print(f"wrote {args.num} samples of {config.model.name} to {args.out}")


def _check_sample_options(config, given: dict, options: dict) -> None:
  """Sampler options (`--kw steps=50`) obey the same types, ranges and choices as the config fields they set,
  checked before anything is restored (the config is the workdir's, changed only here)."""
  from jgen import config as config_lib

  for key, text in given.items():
    try:
      config_lib.set_field(config, options[key], config_lib._parse_value(text), "config", text)
      config_lib.validate(config)
    except UserError as e:
      raise UserError(f"--kw {key}={text}: {str(e).removeprefix('config: ').removeprefix('config ')}") from None
