"""`jgen results --seeds`: runs that differ only in train.seed become one row of mean +- sd."""

import json
import os

import numpy as np

from jgen import cli
from jgen.eval import results


def _run(root, name, seed, lr, nll, fid):
  d = os.path.join(root, name)
  os.makedirs(d)
  config = {"model": {"name": "vae.conv"}, "train": {"seed": seed, "steps": 10}, "optim": {"lr": lr}}
  ev = {"model": "vae.conv", "family": "VAE", "dataset": "fashion_mnist", "split": "test", "step": 10,
        "checkpoint": "best", "metrics": {
            "nll_iwae": {"value": nll, "unit": "nats/example", "kind": "importance_weighted", "num_samples": 5000},
            "fid_fmnist": {"value": fid, "num_samples": 10000}}}
  for file, content in (("config.json", config), ("eval.json", ev)):
    with open(os.path.join(d, file), "w") as f:
      json.dump(content, f)


def test_seeds_are_aggregated_and_other_configs_kept_apart(tmp_path):
  runs = str(tmp_path / "runs")
  nlls, fids = [228.1, 227.5, 228.6], [40.0, 42.5, 41.0]
  for seed, (nll, fid) in enumerate(zip(nlls, fids)):
    _run(runs, f"vae_s{seed}", seed, 1e-3, nll, fid)
  _run(runs, "vae_lr", 0, 3e-4, 230.0, 50.0)
  rows = results.aggregate_seeds(results.collect(runs))
  assert sorted(r["seeds"] for r in rows) == ["1", "3"]
  merged = next(r for r in rows if r["seeds"] == "3")
  assert merged["nats"] == f"~ {np.mean(nlls):.3f} +- {np.std(nlls, ddof=1):.3f} (K=5000)"
  assert merged["FID-FMNIST"] == f"{np.mean(fids):.2f} +- {np.std(fids, ddof=1):.2f}"
  out = str(tmp_path / "RESULTS.md")
  assert cli.main(["results", runs, "--out", out, "--seeds"]) == 0
  text = open(out).read()
  assert "| seeds |" in text and "+-" in text and "--seeds" in text


def test_each_likelihood_cell_says_its_own_number_of_examples():
  """An ELBO on the whole split and an IWAE estimate on its first 1,000, merged into one eval.json."""
  def rec(value, kind, examples, k=None):
    return {"value": value, "kind": kind, "num_samples": k, "examples": examples, "split_examples": 10000}

  ev = {"model": "vae.conv", "family": "VAE", "dataset": "fashion_mnist", "likelihood_examples": 1000,
        "metrics": {"nll": rec(250.0, "lower_bound", 10000, 1)}}
  assert results.row_from_eval(ev)["nats"] == "<= 250.000"
  ev["metrics"]["nll_iwae"] = rec(240.0, "importance_weighted", 1000, 1000)
  assert results.row_from_eval(ev)["nats"] == "~ 240.000 (K=1000) (first 1,000)"
