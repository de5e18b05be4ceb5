"""The study's table from trained workdirs: test bits/char (from `jgen evaluate --metrics nll`), parameters, steps,
training time and device (run.json).

  python experiments/sequences/table.py runs/seq_lstm_cpu runs/seq_transformer_cpu

bits/char = nll / (T ln 2): every test window holds T characters (the window length of `fortunes@T`), each
scored once, conditioned on the characters before it in its window.
"""

import json
import math
import os
import sys


def row(workdir: str) -> str:
  with open(os.path.join(workdir, "eval.json")) as f:
    evaluation = json.load(f)
  with open(os.path.join(workdir, "run.json")) as f:
    run = json.load(f)
  window = int(run["dataset"].partition("@")[2] or 256)
  nll = evaluation["metrics"]["nll"]["value"]
  return (f"| {run['model']} | {run['dataset']} | {nll / (window * math.log(2)):.3f} | {nll:.2f} | "
          f"{run['parameters']:,} | {run['steps']:,} | {run['train_seconds'] / 60:.0f} min | {run['device']} |")


def main(workdirs):
  print("| model | data | test bits/char | test nats/window | parameters | steps | train time | device |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for workdir in workdirs:
    print(row(workdir))


if __name__ == "__main__":
  main(sys.argv[1:])
