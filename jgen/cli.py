"""The `jgen` command: train | sample | evaluate | latent | score | results | list | data.

Bad input ends in one line on stderr and exit code 2, with nothing written.
"""

import argparse
import json
import logging
import os
import sys

from jgen.errors import UserError, notice
from jgen.sample_command import cmd_sample

EXIT_USER_ERROR = 2
# The files an image (a grid, a figure) can be written as.
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
# K of `jgen evaluate --metrics iwae`: the published protocol's 5,000 by default; a million is hours on a GPU.
DEFAULT_IWAE_SAMPLES = 5000
MAX_IWAE_SAMPLES = 1_000_000


def check_output_file(path: str, flag: str, suffixes: tuple[str, ...]) -> None:
  """`path` can be written as a new or replaced file of one of `suffixes`; else one line saying why not."""
  if os.path.isdir(path):
    raise UserError(f"{flag} {path!r} is a directory: give a file name, e.g. {os.path.join(path, 'out' + suffixes[0])}")
  if not path.lower().endswith(suffixes):
    raise UserError(f"{flag} {path!r}: give a file name ending in {', '.join(suffixes)}")
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    what = "is not a directory" if os.path.exists(parent) else "does not exist"
    raise UserError(f"cannot write {path!r}: {parent!r} {what}")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f"cannot write {path!r}: {parent!r} is not writable")
  if os.path.exists(path) and not os.access(path, os.W_OK):
    raise UserError(f"cannot replace {path!r}: it is read-only; give another file name or make it writable")


class _Parser(argparse.ArgumentParser):
  """argparse that reports a usage mistake in one line (exit code 2)."""

  def error(self, message):
    raise UserError(f"{message} (see `{self.prog} --help`)")


def _quiet_libraries():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  logging.getLogger("absl").setLevel(logging.WARNING)
  try:
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.WARNING)
  except ImportError:
    pass


def cmd_train(args):
  from jgen import config as config_lib
  from jgen.train import loop

  config = config_lib.load(args.config, args.set or [])
  if args.distributed:
    from jgen.train import distributed
    distributed.initialize()
  metrics = loop.train(config, args.workdir, show_progress=not args.quiet)
  shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("eval/"))
  print(f"trained {config.model.name} to step {config.train.steps} in {args.workdir}: {shown}")


def cmd_evaluate(args):
  from jgen.eval import suite

  metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
  known = ("nll", "iwae", "fid", "pr", "classes")
  unknown = [m for m in metrics if m not in known]
  if unknown:
    raise UserError(f"--metrics: unknown metric {', '.join(unknown)}; choose from {', '.join(known)}")
  if not metrics:
    raise UserError(f"--metrics names no metric: give some of {', '.join(known)}, e.g. --metrics nll,fid")
  if args.num_samples <= 0:
    raise UserError(f"--num-samples must be positive, got {args.num_samples}")
  if args.num_examples is not None and args.num_examples <= 0:
    raise UserError(f"--num-examples must be positive, got {args.num_examples}")
  if not 0 < args.iwae_samples <= MAX_IWAE_SAMPLES:
    raise UserError(f"--iwae-samples must be in 1..{MAX_IWAE_SAMPLES:,}, got {args.iwae_samples}")
  if args.iwae_samples != DEFAULT_IWAE_SAMPLES and "iwae" not in metrics:
    raise UserError(f"--iwae-samples sets K of the iwae metric, which --metrics {args.metrics} leaves out: add iwae")
  result = suite.evaluate_workdir(args.workdir, metrics=metrics, num_samples=args.num_samples,
                                  num_examples=args.num_examples, checkpoint=args.checkpoint,
                                  iwae_samples=args.iwae_samples, weights=args.weights)
  print(json.dumps(result.get("metrics", result), indent=2))
  print(f"wrote {os.path.join(args.workdir, suite.eval_json_name(args.weights))}")


def _check_count(flag: str, value, low: int, high: int) -> None:
  if value is not None and not low <= value <= high:
    raise UserError(f"{flag} must be in {low}..{high}, got {value}")


def _parse_strengths(text: str | None):
  if text is None:
    return None
  try:
    values = tuple(float(v) for v in text.split(","))
  except ValueError:
    raise UserError(f"--strengths {text!r}: give comma-separated numbers, e.g. 0,0.25,0.5,0.75,1") from None
  if not 1 <= len(values) <= 25 or not all(abs(v) < 1e6 for v in values):
    raise UserError(f"--strengths {text!r}: give 1 to 25 finite numbers, e.g. 0,0.25,0.5,0.75,1")
  return values


def cmd_latent(args):
  from jgen.eval import latent

  check_output_file(args.out, "--out", IMAGE_SUFFIXES)
  outputs = [latent.sibling(args.out, ".json")] + ([latent.sibling(args.out, "_grid")] if args.action == "map" else [])
  for path in outputs:
    check_output_file(path, "--out (next to it)", (os.path.splitext(path)[1],))
  _check_count("--num-examples", getattr(args, "num_examples", None), 1, 1_000_000)
  if args.action == "map":
    _, written = latent.run_map(args.workdir, args.out, args.split, args.num_examples, args.checkpoint)
  elif args.action == "interpolate":
    _check_count("--steps", args.steps, 2, 200)
    _check_count("--from", args.start, 0, 2**32 - 1)
    _check_count("--to", args.end, 0, 2**32 - 1)
    _, written = latent.run_interpolate(args.workdir, args.out, args.start, args.end, args.steps, args.spherical,
                                        args.split, args.checkpoint)
  else:
    _check_count("--num", args.num, 1, 100)
    _, written = latent.run_arithmetic(args.workdir, args.out, args.attribute, _parse_strengths(args.strengths),
                                       args.num, args.num_examples, args.split, args.checkpoint)
  print(f"wrote {', '.join(written[:-1])} and {written[-1]}")


def cmd_score(args):
  from jgen.eval import scoring

  check_output_file(args.out, "--out", (".npy",))
  check_output_file(scoring.json_path(args.out), "--out (its .json next to it)", (".json",))
  _check_count("--iwae", args.iwae, 1, MAX_IWAE_SAMPLES)
  _check_count("--num-examples", args.num_examples, 1, 10_000_000)
  if not 0 <= args.seed < 2**32:
    raise UserError(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
  _, summary = scoring.run(args.workdir, args.data, args.out, args.split, args.against, args.iwae, args.num_examples,
                           args.seed, args.checkpoint)
  print(summary)


def cmd_results(args):
  from jgen.eval import results

  if not os.path.isdir(args.runs_dir):
    what = "is not a directory" if os.path.exists(args.runs_dir) else "does not exist"
    raise UserError(f"{args.runs_dir!r} {what}: give the directory that holds the runs (e.g. runs)")
  check_output_file(args.out, "--out", (".md",))
  if os.path.exists(args.out) and not results.written_by_results(args.out):
    raise UserError(f"--out {args.out!r} exists and is not a table written by `jgen results`; nothing written: "
                    f"give a new file name, or move it aside")
  unreadable = []
  rows = results.collect(args.runs_dir, unreadable)
  if not rows:
    found = f" ({len(unreadable)} unreadable, e.g. {unreadable[0]})" if unreadable else ""
    raise UserError(f"no readable eval.json under {args.runs_dir!r}{found}; nothing written: run `jgen evaluate "
                    f"--workdir RUN` on the runs first")
  for path in unreadable:
    notice(f"skipped {path}: not an eval.json written by `jgen evaluate`")
  command = f"jgen results {args.runs_dir} --out {args.out}" + (" --seeds" if args.seeds else "")
  results.write_results_md(rows, args.out, command=command, seeds=args.seeds)
  print(f"wrote {len(rows)} runs to {args.out}" + (" (repeats over seeds as mean +- sd)" if args.seeds else ""))


def cmd_list(args):
  from jgen import listing
  print(listing.taxonomy_table())


def cmd_data(args):
  from jgen.data import sources

  if args.action == "list":
    if args.name or args.source:
      raise UserError("jgen data list takes no NAME or --source; to build one dataset: jgen data prepare NAME")
    for name, description in sources.DATASETS.items():
      print(f"{name:24s} {description}")
    return
  if not args.name:
    raise UserError("jgen data prepare needs a dataset NAME (`jgen data list` shows them)")
  if args.source is not None and args.name != "fashion_mnist" and not sources.is_text(args.name):
    raise UserError(f"--source names the raw files of fashion_mnist or of a text dataset; {args.name} reads none: "
                    f"drop --source")
  path = sources.prepare(args.name, source_dir=args.source)
  print(f"prepared {args.name} in {path}")


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(prog="jgen", description="Generative models across the taxonomy, in JAX.")
  sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

  p = sub.add_parser("train", help="train a config, or resume it in an existing workdir")
  p.add_argument("config", help="CONFIG.py[:VARIANT], e.g. configs/vae/conv_fashion_mnist.py:smoke")
  p.add_argument("--workdir", required=True)
  p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
  p.add_argument("--quiet", action="store_true", help="no progress output")
  p.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize() (multi-host)")
  p.set_defaults(fn=cmd_train)

  p = sub.add_parser("sample", help="draw samples from a trained run into a PNG grid")
  p.add_argument("--workdir", required=True)
  p.add_argument("--num", type=int, default=64)
  p.add_argument("--out", help="the grid's file, new or replaced: .png, .pdf, .svg, .jpg "
                 "(a directory or another suffix is refused); for text models an optional .txt file")
  p.add_argument("--seed", type=int, default=0, help="0..2**32-1")
  p.add_argument("--checkpoint", choices=("latest", "best"), default="latest",
                 help="the newest checkpoint, or the one with the best main eval metric")
  p.add_argument("--kw", action="append", metavar="KEY=VALUE",
                 help="passed to the family's sample, e.g. --kw label=3 --kw guidance=2.0 --kw steps=50; "
                 "text models: --kw temperature=0.8 --kw top_k=40 --kw top_p=0.9")
  p.add_argument("--per-class", type=int, help="label-conditional models: a grid of one row per class with this "
                 "many samples each (instead of --num)")
  p.add_argument("--prompt", help="text models: the start of every sample (characters of the training text)")
  p.add_argument("--length", type=int, help="text models: characters drawn after the prompt "
                 "(default: the config's model.sample_length)")
  p.set_defaults(fn=cmd_sample)

  p = sub.add_parser("evaluate", help="evaluate a trained run on its test split; writes eval.json")
  p.add_argument("--workdir", required=True)
  p.add_argument("--metrics", default="nll,fid,pr",
                 help="comma-separated: nll, iwae, fid (FID/KID-FMNIST), pr (precision/recall), classes (classes "
                      "covered, class-histogram KL, conditional class accuracy)")
  p.add_argument("--num-samples", type=int, default=10000)
  p.add_argument("--weights", choices=("inference", "trained"), default="inference",
                 help="inference: the EMA weights where the run keeps them (eval.json); trained: the raw trained "
                      "weights of the same checkpoint (eval_trained_weights.json)")
  p.add_argument("--num-examples", type=int, default=None,
                 help="likelihoods on the first N examples of the test split (default: all of it)")
  p.add_argument("--iwae-samples", type=int, default=DEFAULT_IWAE_SAMPLES,
                 help="K of the iwae metric: importance samples per test example (default 5000, the protocol's)")
  p.add_argument("--checkpoint", choices=("latest", "best"), default="latest",
                 help="the newest checkpoint, or the one with the best main eval metric")
  p.set_defaults(fn=cmd_evaluate)

  p = sub.add_parser("latent", help="latent space of a trained run: map, interpolate, arithmetic (PNG + JSON)")
  latent_sub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
  checkpoint_help = "the newest checkpoint, or the one with the best main eval metric"
  out_help = ("the figure (.png, .pdf, .svg, .jpg); a JSON record goes next to it (same stem, .json), and "
              "for map a decoded grid where the latent has one (STEM_grid.SUFFIX)")
  q = latent_sub.add_parser("map", help="the split's examples in latent space, coloured by label")
  q.add_argument("--num-examples", type=int, default=2000, help="the first N examples of the split")
  r = latent_sub.add_parser("interpolate", help="the decoded walk between two test examples (or, for a GAN, seeds)")
  r.add_argument("--from", dest="start", type=int, required=True, help="index of the start example (GAN: a seed)")
  r.add_argument("--to", dest="end", type=int, required=True, help="index of the end example (GAN: a seed)")
  r.add_argument("--steps", type=int, default=10, help="decoded points along the walk, ends included")
  r.add_argument("--spherical", action="store_true", help="slerp instead of a straight line (N(0, I) priors only)")
  a = latent_sub.add_parser("arithmetic", help="CLASS_B examples plus strength x (mean of A - mean of B)")
  a.add_argument("--attribute", required=True, help="CLASS_A-CLASS_B by name or index, e.g. sneaker-sandal or 7-5")
  a.add_argument("--strengths", help="comma-separated strengths (default 0,0.25,0.5,0.75,1)")
  a.add_argument("--num", type=int, default=8, help="examples of CLASS_B, one per row")
  a.add_argument("--num-examples", type=int, default=2000, help="the class means use the first N examples")
  for each in (q, r, a):
    each.add_argument("--workdir", required=True)
    each.add_argument("--out", required=True, help=out_help)
    each.add_argument("--split", default="test", help="the split the examples come from (train, validation, test)")
    each.add_argument("--checkpoint", choices=("latest", "best"), default="latest", help=checkpoint_help)
  p.set_defaults(fn=cmd_latent)

  p = sub.add_parser("score", help="score inputs by the run's log-likelihood (or -energy); AUROC against outliers")
  p.add_argument("--workdir", required=True)
  p.add_argument("--data", required=True, help="a dataset name (`jgen data list`), an outlier set of the run's "
                 "dataset (noise, inverted, digits28) or a .npy file [N, ...] of the run's data shape")
  p.add_argument("--split", default="test", help="the split of a named dataset")
  p.add_argument("--out", required=True, help="scores.npy (float64 [N], higher = more typical); a JSON record "
                 "goes next to it (same stem, .json)")
  p.add_argument("--against", help="outliers to tell --data from (as --data): reports the AUROC")
  p.add_argument("--iwae", type=int, metavar="K", help="the IWAE estimate with K importance samples "
                 "(families with importance weights)")
  p.add_argument("--num-examples", type=int, help="the first N inputs of --data and --against")
  p.add_argument("--seed", type=int, default=0, help="dequantization, bound and noise draws (0..2**32-1)")
  p.add_argument("--checkpoint", choices=("latest", "best"), default="latest", help=checkpoint_help)
  p.set_defaults(fn=cmd_score)

  p = sub.add_parser("results", help="collect runs' eval.json into a markdown results table")
  p.add_argument("runs_dir")
  p.add_argument("--out", default="experiments/RESULTS.md",
                 help="a .md file, new or one `jgen results` wrote before (anything else is refused)")
  p.add_argument("--seeds", action="store_true",
                 help="one row per config: runs that differ only in train.seed as mean +- sd")
  p.set_defaults(fn=cmd_results)

  p = sub.add_parser("list", help="print the taxonomy: branch, family, models, configs")
  p.set_defaults(fn=cmd_list)

  p = sub.add_parser("data", help="list or prepare datasets")
  p.add_argument("action", choices=("prepare", "list"))
  p.add_argument("name", nargs="?")
  p.add_argument("--source", help="directory with the raw files (e.g. Fashion-MNIST IDX files)")
  p.set_defaults(fn=cmd_data)
  return parser


# Commands that compile jax programs: they read and write the persistent compilation cache.
_COMPILING = ("train", "sample", "evaluate", "latent", "score")


def main(argv=None) -> int:
  _quiet_libraries()
  try:
    args = build_parser().parse_args(argv)
    if getattr(args, "workdir", None) == "":  # "" would mean the current directory to some calls and none to others
      raise UserError("--workdir is empty: give the run's directory, e.g. --workdir runs/vae_digits")
    if args.command in _COMPILING:
      from jgen.train import compile_cache
      compile_cache.use_persistent_cache()
    args.fn(args)
  except UserError as e:
    print(f"jgen: error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR
  except KeyboardInterrupt:
    print("jgen: interrupted; the last checkpoint is kept, run the same command to resume", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
