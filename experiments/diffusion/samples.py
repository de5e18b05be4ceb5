"""Sample grids and the DDIM steps vs quality table of a trained Fashion-MNIST DDPM run.

  .venv/bin/python experiments/diffusion/samples.py runs/ddpm_fmnist_cpu [--n 200] [--steps 10,20,50,100,1000]

Writes next to this file:
  samples_unconditional.png   100 unconditional DDIM-50 samples (the unconditional branch)
  samples_guided_w1.png       one row per class, conditional, guidance 1 (no extrapolation)
  samples_guided_w3.png       the same with guidance 3
  ddim_steps.json             per number of DDIM steps (eta 0): FID-FMNIST, KID, precision,
                              recall of n samples against the first n test images, seconds
and prints the table as markdown, with the floor (n training images against the same n
test images) so the small-n bias of FID can be read off.
Every row draws its samples from the same initial noise (one seed).
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jgen.eval import plots, results, suite  # noqa: E402
from jgen.train import checkpoint  # noqa: E402
from jgen.train.sampling import Sampler, draw  # noqa: E402

CLASS_NAMES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def sample_in_batches(family, state, n, steps, batch_size=100, seed=0):
  """n unconditional DDIM samples in batches (one compilation per batch size), batch i seeded with fold_in(seed, i)."""
  ddim = family.with_overrides("model.sampler=ddim", f"model.sample_steps={steps}")
  return draw(Sampler(ddim), state, n, jax.random.key(seed), batch_size, cond_fn=lambda rng, size: None)


def quality_row(real, fake, **fields):
  metrics, _ = suite.sample_quality(real, fake)
  return {**fields, **{k: v["value"] for k, v in metrics.items()}}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("workdir")
  parser.add_argument("--n", type=int, default=200, help="samples per row of the steps table")
  parser.add_argument("--steps", default="10,20,50,100,1000")
  parser.add_argument("--out", default=HERE)
  args = parser.parse_args()

  config, family, state = checkpoint.restore_for_inference(args.workdir)
  real, _ = suite.load_split(config.data.name, "test", limit=args.n)
  train, _ = suite.load_split(config.data.name, "train", limit=args.n)

  x = sample_in_batches(family, state, 100, steps=50)
  plots.save_image_grid(x, os.path.join(args.out, "samples_unconditional.png"), ncol=10,
                        title="unconditional, DDIM-50")
  if family.num_classes:
    labels = jnp.repeat(jnp.arange(10), 10)  # one row per class
    sampler = Sampler(family.with_overrides("model.sampler=ddim", "model.sample_steps=50"))
    for w in (1.0, 3.0):
      x = sampler.to_host(sampler(state, jax.random.key(1), 100, {"label": labels, "guidance": w}))
      plots.save_image_grid(x, os.path.join(args.out, f"samples_guided_w{w:g}.png"), ncol=10,
                            title=f"rows: {', '.join(CLASS_NAMES)}; DDIM-50, guidance {w:g}")

  rows = [quality_row(real, train, sampler="floor: training images", steps=0, seconds=0.0)]
  for steps in (int(s) for s in args.steps.split(",")):
    t0 = time.perf_counter()
    fake = sample_in_batches(family, state, args.n, steps=steps)
    rows.append(quality_row(real, fake, sampler="ddim", steps=steps, seconds=time.perf_counter() - t0))
    print(json.dumps(rows[-1]), flush=True)
  with open(os.path.join(args.out, "ddim_steps.json"), "w") as f:
    json.dump({"workdir": args.workdir, "step": int(jax.device_get(state.step)), "n": args.n,
               "device": f"{jax.device_count()}x {jax.devices()[0].device_kind}", "rows": rows}, f, indent=2)

  columns = ("sampler", "steps", f"FID-FMNIST (n={args.n})", "KID", "precision", "recall", "seconds")
  print("\n" + results.render_table([dict(zip(columns, (
      r["sampler"], r["steps"] or "-", f"{r['fid_fmnist']:.2f}", f"{r['kid_fmnist']:.4f}", f"{r['precision']:.3f}",
      f"{r['recall']:.3f}", f"{r['seconds']:.0f}"))) for r in rows], columns))

if __name__ == "__main__":
  main()
