"""The GAN study's table from the runs' eval.json files (test split, best checkpoint by validation FID).

  python experiments/gan/table.py runs/gan_cpu > experiments/gan/table.md

One row per run and weights (the EMA the run samples with, and the trained weights of the same checkpoint),
with FID-FMNIST at n = 10,000 and n = 2,000, KID-FMNIST, precision, recall, classes covered, the
class-histogram KL, the conditional class accuracy, the checkpoint's step, train time and device.
"""

import json
import os
import sys


def _load(path):
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def _value(record, key, fmt):
  m = (record or {}).get("metrics", {}).get(key)
  return fmt.format(m["value"]) if m else ""


def _settings(workdir):
  config = _load(os.path.join(workdir, "config.json")) or {}
  m = config.get("model", {})
  parts = [f"{m.get('loss')} loss"]
  if m.get("penalty", "none") != "none":
    parts.append(f"{m['penalty']} {m.get('penalty_weight')}")
  if m.get("spectral_norm"):
    parts.append("spectral norm")
  if config.get("train", {}).get("batches_per_step", 1) > 1:
    parts.append(f"{config['train']['batches_per_step']} critic steps")
  parts.append(f"G {tuple(m.get('gen_channels', ()))} / D {tuple(m.get('disc_channels', ()))}")
  return m.get("name", "?"), ", ".join(parts)


def rows(root):
  for name in sorted(os.listdir(root)):
    workdir = os.path.join(root, name)
    ema, raw = _load(os.path.join(workdir, "eval.json")), _load(os.path.join(workdir, "eval_trained_weights.json"))
    if ema is None:
      continue
    small = _load(os.path.join(workdir, "eval_n2000.json"))
    run = ema.get("run", {})
    model, settings = _settings(workdir)
    for weights, record in (("EMA", ema), ("trained", raw)):
      if record is None:
        continue
      yield [name, model, settings, weights if ema.get("weights") == "ema" else "trained (no EMA kept)",
             _value(record, "fid_fmnist", "{:.1f}"), _value(small, "fid_fmnist", "{:.1f}") if weights == "EMA" else "",
             _value(record, "kid_fmnist", "{:.4f}"), _value(record, "precision", "{:.3f}"),
             _value(record, "recall", "{:.3f}"), _value(record, "classes_covered", "{:.0f}"),
             _value(record, "class_kl", "{:.3f}"), _value(record, "class_accuracy", "{:.3f}"),
             _value(record, "intra_fid_fmnist", "{:.1f}"),
             f"{record.get('step')} of {run.get('steps')}", f"{run.get('train_seconds', 0) / 60:.1f} min",
             run.get("device", "")]


HEADER = ["run", "model", "settings", "weights", "FID-FMNIST (n=10k)", "FID-FMNIST (n=2k)", "KID-FMNIST",
          "precision", "recall", "classes covered", "class KL", "class accuracy", "intra-class FID", "best step", "train time", "device"]


def main(root):
  lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows(root)]
  print("\n".join(lines))


if __name__ == "__main__":
  main(sys.argv[1])
