"""Outlier AUROC: how well each trained model's score separates Fashion-MNIST test images from outliers.

For every run given, the score of jgen.eval.ood (an EBM's -E(x); a likelihood model's log p(x) or its
bound) on the first N Fashion-MNIST test images and on N images of each outlier set (uniform noise, the
test images inverted, scikit-learn's 8x8 digits resized to 28x28; all on the 8-bit grid), and the AUROC
of telling them apart (1 = perfect, 0.5 = chance, < 0.5 = the outliers score higher).

  .venv/bin/python experiments/ebm/outliers.py --run ebm=runs/ebm_fmnist_cpu --run vae=runs/vae_fmnist_2k \
      --run pixelcnn=runs/pixelcnn_fmnist_cpu --n 2000 --out experiments/ebm/outliers.json

Reads the runs' newest checkpoints; writes nothing into their workdirs.
"""

import argparse
import json
import os
import time

import numpy as np


def evaluate_run(workdir: str, test_images: np.ndarray, outliers: dict, seed: int = 0) -> dict:
  from jgen.eval import ood
  from jgen.train import checkpoint

  config, family, state = checkpoint.restore_for_inference(workdir)
  t0 = time.perf_counter()
  inliers = ood.scores(family, state, test_images, seed=seed)
  row = {"workdir": workdir, "model": config.model.name, "step": int(state.step), "score": ood.score_kind(family),
         "mean_score": {"test": float(inliers.mean())}, "auroc": {}}
  for name, x in outliers.items():
    s = ood.scores(family, state, x, seed=seed + 1)
    row["auroc"][name] = ood.auroc(inliers, s)
    row["mean_score"][name] = float(s.mean())
  row["seconds"] = round(time.perf_counter() - t0, 1)
  return row


def table(rows: list[dict]) -> str:
  names = list(rows[0]["auroc"])
  lines = ["| model | run (step) | score | " + " | ".join(f"AUROC vs {n}" for n in names) + " |",
           "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |"]
  for r in rows:
    cells = " | ".join(f"{r['auroc'][n]:.3f}" for n in names)
    lines.append(f"| {r['model']} | `{r['workdir']}` ({r['step']}) | {r['score']} | {cells} |")
  return "\n".join(lines)


def main():
  from jgen.eval import ood
  from jgen.eval.suite import load_split

  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--run", action="append", required=True, help="LABEL=WORKDIR (repeatable)")
  p.add_argument("--n", type=int, default=2000, help="images per set (the digits have 1,797)")
  p.add_argument("--out", default="experiments/ebm/outliers.json")
  args = p.parse_args()
  test_images, _ = load_split("fashion_mnist", "test", limit=args.n)
  outliers = ood.outlier_sets(test_images, args.n)
  rows = []
  for item in args.run:
    label, _, workdir = item.partition("=")
    if not os.path.isdir(workdir):
      print(f"skipping {label}: no run at {workdir}")
      continue
    rows.append({"label": label, **evaluate_run(workdir, test_images, outliers)})
    print(json.dumps(rows[-1]))
  result = {"num_test": len(test_images), "num_outliers": {k: len(v) for k, v in outliers.items()}, "runs": rows}
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  print(table(rows))


if __name__ == "__main__":
  main()
