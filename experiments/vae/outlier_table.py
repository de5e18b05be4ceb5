"""The outlier table of experiments/vae/README.md from the JSON records `jgen score` wrote (outliers.sh), with the
flow and EBM rows of their own studies (experiments/flow/glow_ood.json, experiments/ebm/outliers.json).

  python experiments/vae/outlier_table.py experiments/vae/outliers
"""

import glob
import json
import os
import sys

SETS = ("noise", "inverted", "digits28")


def rows(directory: str):
  runs = {}
  for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
    with open(path) as f:
      record = json.load(f)
    name = os.path.basename(path).rsplit("_", 1)[0]
    run = runs.setdefault(name, {"model": record["model"], "score": record["score"], "step": record["step"],
                                 "n": record["n"]})
    run[record["against"]["outlier_set"]] = record["against"]["auroc"]
  return runs


def earlier_rows(repo: str):
  out = {}
  glow = os.path.join(repo, "experiments/flow/glow_ood.json")
  if os.path.exists(glow):
    g = json.load(open(glow))
    out["glow (experiments/flow)"] = {"model": g["model"], "score": g["score"], "step": g["step"], "n": g["n"],
                                      **{s: g["auroc"][s.replace("28", "")] for s in SETS}}
  ebm = os.path.join(repo, "experiments/ebm/outliers.json")
  if os.path.exists(ebm):
    e = json.load(open(ebm))
    for run in e["runs"]:
      if run["label"] == "ebm":
        out["ebm (experiments/ebm)"] = {"model": run["model"], "score": run["score"], "step": run["step"],
                                        "n": e["num_test"], **{s: run["auroc"][s.replace("28", "")] for s in SETS}}
  return out


def main():
  directory = sys.argv[1] if len(sys.argv) > 1 else "experiments/vae/outliers"
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  table = {**rows(directory), **earlier_rows(repo)}
  print("| run | model | score | step | test images | AUROC noise | AUROC inverted | AUROC digits |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for name, r in table.items():
    cells = " | ".join(f"{r[s]:.3f}" if s in r else "" for s in SETS)
    print(f"| {name} | {r['model']} | {r['score']} | {r['step']:,} | {r['n']:,} | {cells} |")


if __name__ == "__main__":
  main()
