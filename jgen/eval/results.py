"""experiments/RESULTS.md from the eval.json of every run, so the results table is never typed by hand.

`collect(runs_dir)` finds each eval.json under `runs_dir` (with the run.json the
training loop writes next to it) and makes one row per run; `write_results_md`
renders the rows in taxonomy order with the conventions of every column.
"""

import json
import math
import os

from jgen.registry import TAXONOMY

COLUMNS = ("family", "model", "dataset", "bits/dim", "nats", "FID-FMNIST", "precision", "recall", "parameters",
           "train steps", "train time", "device", "run")
# How a likelihood's kind shows in the table: a bound on log p is an upper bound on nats and bits/dim.
KIND_MARK = {"exact": "", "lower_bound": "<= ", "importance_weighted": "~ "}


def _read_json(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return None


def _likelihood_cell(metrics: dict, key: str, subset: int | None = None) -> str:
  """The best reported value of a likelihood (IWAE if present, else the family's own) with its kind mark,
  and the number of test examples when only a subset of the split was scored."""
  for name in (f"{key}_iwae", key):
    rec = metrics.get(name)
    if rec and rec.get("value") is not None and math.isfinite(rec["value"]):
      samples = f" (K={rec['num_samples']})" if rec.get("kind") == "importance_weighted" else ""
      # the record's own count where it has one (evaluations of one checkpoint merge), else the file's
      if "examples" in rec:
        subset = rec["examples"] if rec["examples"] < rec.get("split_examples", rec["examples"] + 1) else None
      examples = f" (first {subset:,})" if subset else ""
      return f"{KIND_MARK.get(rec.get('kind'), '')}{rec['value']:.3f}{samples}{examples}"
  return ""


def _per_char_cell(metrics: dict, subset: int | None = None) -> str:
  """Text models' bits per character, in the bits/dim column with its unit (a character is the dimension)."""
  cell = _likelihood_cell(metrics, "bits_per_char", subset)
  return f"{cell} bits/char" if cell else ""


def _value_cell(metrics: dict, key: str, fmt: str, full_n: int | None = None) -> str:
  """The value; with `full_n`, a sample count below it is shown (FID is biased upwards at small n)."""
  rec = metrics.get(key)
  if not rec or rec.get("value") is None:
    return ""
  n = rec.get("num_samples")
  return format(rec["value"], fmt) + (f" (n={n:,})" if full_n and n and n < full_n else "")


def _raw_values(metrics: dict) -> dict:
  """The numbers behind the table's numeric cells (mean +- sd of seeds is computed from these)."""
  out = {}
  for column, keys in (("bits/dim", ("bits_per_dim_iwae", "bits_per_dim", "bits_per_char")),
                       ("nats", ("nll_iwae", "nll")), ("FID-FMNIST", ("fid_fmnist",)),
                       ("precision", ("precision",)), ("recall", ("recall",))):
    for key in keys:
      rec = metrics.get(key)
      if rec and isinstance(rec.get("value"), (int, float)) and math.isfinite(rec["value"]):
        out[column] = (float(rec["value"]), rec)
        break
  return out


def _duration(seconds) -> str:
  if seconds is None:
    return ""
  seconds = float(seconds)
  if seconds < 120:
    return f"{seconds:.0f} s"
  if seconds < 7200:
    return f"{seconds / 60:.1f} min"
  return f"{seconds / 3600:.1f} h"


def row_from_eval(ev: dict, run: dict | None = None, run_name: str = "") -> dict:
  """One table row (column -> text) from an eval.json dict and the run's run.json dict."""
  run = {**(ev.get("run") or {}), **(run or {})}
  m = ev.get("metrics", {})
  params = ev.get("parameters", run.get("parameters"))
  return {
      "run": run_name,
      "family": ev.get("family", run.get("family", "")),
      "model": ev.get("model", run.get("model", "")),
      "dataset": ev.get("dataset", run.get("dataset", "")),
      "bits/dim": (_likelihood_cell(m, "bits_per_dim", ev.get("likelihood_examples"))
                   or _per_char_cell(m, ev.get("likelihood_examples"))),
      "nats": _likelihood_cell(m, "nll", ev.get("likelihood_examples")),
      "FID-FMNIST": _value_cell(m, "fid_fmnist", ".2f", full_n=10_000),
      "precision": _value_cell(m, "precision", ".3f"),
      "recall": _value_cell(m, "recall", ".3f"),
      "parameters": f"{params:,}" if isinstance(params, int) else "",
      "train steps": str(run.get("steps", ev.get("step", "")) or ""),
      "train time": _duration(run.get("train_seconds")),
      "device": run.get("device", ev.get("device", "")),
      "_values": _raw_values(m),
  }


def collect(runs_dir: str, unreadable: list | None = None) -> list[dict]:
  """Rows for every run directory under `runs_dir` that holds an eval.json, in taxonomy order; the paths of
  eval.json files that are not `jgen evaluate`'s are appended to `unreadable`."""
  rows = []
  for root, dirs, files in os.walk(runs_dir):
    dirs.sort()
    if "eval.json" not in files:
      continue
    ev = _read_json(os.path.join(root, "eval.json"))
    run = _read_json(os.path.join(root, "run.json")) if "run.json" in files else None
    try:
      if not isinstance(ev, dict) or not isinstance(ev.get("metrics"), dict):
        raise TypeError("not an eval.json")
      row = row_from_eval(ev, run if isinstance(run, dict) else None, os.path.relpath(root, runs_dir))
      row["_group"] = _seedless_config(os.path.join(root, "config.json"), ev)
      rows.append(row)
    except (AttributeError, TypeError, ValueError):  # JSON, but not in the shape `jgen evaluate` writes
      if unreadable is not None:
        unreadable.append(os.path.join(root, "eval.json"))
  order = {family: i for i, (_, family) in enumerate(TAXONOMY)}
  rows.sort(key=lambda r: (order.get(r["family"], len(order)), r["dataset"], r["model"], r["run"]))
  return rows


def _seedless_config(path: str, ev: dict) -> str:
  """What makes runs repeats of one experiment: the run's config without `train.seed` (and the evaluated
  checkpoint, split and metrics' sample counts), as canonical JSON."""
  config = _read_json(path) or {}
  if isinstance(config.get("train"), dict):
    config["train"] = {k: v for k, v in config["train"].items() if k != "seed"}
  counts = {k: v.get("num_samples") for k, v in ev.get("metrics", {}).items() if isinstance(v, dict)}
  return json.dumps({"config": config, "checkpoint": ev.get("checkpoint"), "split": ev.get("split"),
                     "examples": ev.get("likelihood_examples"), "counts": counts}, sort_keys=True)


def _mean_sd_cell(values: list[tuple[float, dict]], column: str) -> str:
  nums = [v for v, _ in values]
  rec = values[0][1]
  mean = sum(nums) / len(nums)
  sd = math.sqrt(sum((v - mean) ** 2 for v in nums) / (len(nums) - 1))
  digits = 2 if column == "FID-FMNIST" else 3
  mark = KIND_MARK.get(rec.get("kind"), "") if column in ("bits/dim", "nats") else ""
  samples = f" (K={rec['num_samples']})" if rec.get("kind") == "importance_weighted" else ""
  return f"{mark}{mean:.{digits}f} +- {sd:.{digits}f}{samples}"


def aggregate_seeds(rows: list[dict]) -> list[dict]:
  """Rows of runs that differ only in `train.seed` merged into one: numeric cells as mean +- sd (sample sd)
  over the seeds, the run column listing them and "seeds" their number; single runs stay as they are."""
  groups: dict[str, list[dict]] = {}
  for row in rows:
    groups.setdefault(row.get("_group", row["run"]), []).append(row)
  out = []
  for members in groups.values():
    if len(members) == 1:
      out.append({**members[0], "seeds": "1"})
      continue
    merged = {**members[0], "run": ", ".join(m["run"] for m in members), "seeds": str(len(members))}
    for column in ("bits/dim", "nats", "FID-FMNIST", "precision", "recall"):
      values = [m["_values"][column] for m in members if column in m.get("_values", {})]
      merged[column] = _mean_sd_cell(values, column) if len(values) == len(members) else ""
    out.append(merged)
  return out


def render_table(rows: list[dict], columns=COLUMNS) -> str:
  def esc(text):
    return str(text).replace("|", "\\|")

  lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
  lines += ["| " + " | ".join(esc(r.get(c, "")) for c in columns) + " |" for r in rows]
  return "\n".join(lines)


LEGEND = """\
Conventions (jgen.eval.likelihood, jgen.eval.suite):
- nats: -log p(x) per test example. bits/dim: 8-bit images dequantized uniformly,
  nll / (D ln 2) + 8 for densities on [0, 1]; nll / (D ln 2) for discrete 256-level models.
- A plain number is exact; "<= " marks an upper bound on nats and bits/dim (ELBO,
  diffusion variational bound); "~ " an importance-weighted (IWAE) estimate with K samples.
- FID-FMNIST: Frechet distance on the penultimate features of jgen's own Fashion-MNIST
  classifier (jgen/assets). It is not Inception FID and cannot be compared with papers' FID.
  Precision / recall: k-NN manifolds (k = 3) in the same feature space.
"""


GENERATED_MARK = "Generated from each run's eval.json by"


def written_by_results(path: str) -> bool:
  """Whether the file at `path` is a table `write_results_md` wrote (so replacing it loses nothing typed)."""
  try:
    with open(path, errors="replace") as f:
      return GENERATED_MARK in f.read(4096)
  except OSError:
    return False


def write_results_md(rows: list[dict], path: str, title: str = "jgen results",
                     command: str = "jgen results runs --out experiments/RESULTS.md", seeds: bool = False) -> str:
  """Writes the results table with its legend; the file says it is generated and by which command. With
  `seeds`, repeats of one config over seeds are one row of mean +- sd."""
  columns = COLUMNS
  if seeds:
    rows, columns = aggregate_seeds(rows), COLUMNS[:3] + ("seeds",) + COLUMNS[3:]
  legend = LEGEND + ("- mean +- sd: over runs that differ only in train.seed (sample standard deviation).\n"
                     if seeds else "")
  text = (f"# {title}\n\n"
          f"{GENERATED_MARK} `{command}`; do not edit by hand.\n\n"
          f"{render_table(rows, columns)}\n\n{legend}")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)
  return path


def main(argv=None):
  import sys

  args = (argv if argv is not None else sys.argv[1:]) or ["runs", "experiments/RESULTS.md"]
  runs_dir, out = args[0], args[1] if len(args) > 1 else "experiments/RESULTS.md"
  rows = collect(runs_dir)
  write_results_md(rows, out)
  print(f"wrote {len(rows)} runs to {out}")


if __name__ == "__main__":
  main()
