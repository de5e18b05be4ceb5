"""Image completion and sampling speed of a trained PixelCNN run.

  .venv/bin/python experiments/autoregressive/complete.py runs/gated_pixelcnn_fmnist_cpu [--n 8] [--samples 3]
      [--out experiments/autoregressive --prefix gated_]

Takes the first N test images, keeps their top half and lets the model draw the bottom half (`samples` times
each), and writes OUT/PREFIXcompletions.png: per row, the original, the kept half, then the completions.
Also writes OUT/PREFIXsamples.png (64 samples; a label-conditional model cycles over the classes) and prints the
images/s of one jitted call that draws 64 samples of 28x28. OUT defaults to WORKDIR/figures.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jgen.eval import plots
from jgen.eval.suite import load_split
from jgen.nn import pixel_heads as heads
from jgen.train import checkpoint


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("workdir")
  parser.add_argument("--n", type=int, default=8)
  parser.add_argument("--samples", type=int, default=3)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default=None, help="directory for the figures (default: WORKDIR/figures)")
  parser.add_argument("--prefix", default="", help="prepended to the figure file names")
  args = parser.parse_args()
  config, family, state = checkpoint.restore_for_inference(args.workdir, which="best")
  figures = args.out or os.path.join(args.workdir, "figures")
  os.makedirs(figures, exist_ok=True)
  samples_path = os.path.join(figures, args.prefix + "samples.png")
  h, w, _ = family.spec.shape

  sample = jax.jit(lambda rng: family.sample(state, rng, 64))
  jax.block_until_ready(sample(jax.random.key(args.seed)))  # compile
  t0 = time.perf_counter()
  x = jax.block_until_ready(sample(jax.random.key(args.seed + 1)))
  seconds = time.perf_counter() - t0
  plots.save_image_grid(np.asarray(x), samples_path, title=f"{config.model.name} samples")
  print(f"64 samples of {h}x{w} in {seconds:.2f} s: {64 / seconds:.1f} images/s on {jax.devices()[0].device_kind}")

  real, _ = load_split(config.data.name, "test", limit=args.n, source_dir=config.data.source_dir or None)
  real = np.asarray(real[:args.n], np.float32)
  if family.head == "bernoulli":
    given = (real > 0.5).astype(np.float32)
  else:
    given = np.round(real * (heads.LEVELS - 1))
  given = np.repeat(given, args.samples, axis=0)
  complete = jax.jit(lambda rng: family.sample(state, rng, len(given), start=(h // 2) * w, given=jnp.asarray(given)))
  filled = np.asarray(complete(jax.random.key(args.seed + 2))).reshape((args.n, args.samples) + real.shape[1:])
  kept = real.copy()
  kept[:, h // 2:] = 0.0
  rows = np.concatenate([real[:, None], kept[:, None], filled], axis=1).reshape((-1,) + real.shape[1:])
  path = os.path.join(figures, args.prefix + "completions.png")
  plots.save_image_grid(rows, path, ncol=args.samples + 2,
                        title="original | top half kept | completions")
  print(f"wrote {path} and {samples_path}")


if __name__ == "__main__":
  main()
