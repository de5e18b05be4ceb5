"""The figures and the outlier table of experiments/flow/README.md, from trained flow runs (best checkpoints).

  .venv/bin/python experiments/flow/figures.py images runs/glow_fmnist_cpu --prefix glow [--n-ood 2000 --n-fid 2000]
  .venv/bin/python experiments/flow/figures.py toy runs/realnvp_moons_cpu runs/realnvp_8gaussians_cpu \
      runs/realnvp_checkerboard_cpu

images: PREFIX_interpolation.png, latent interpolation strips between pairs of test images (encode both,
        walk the straight line between the latents, decode; the end columns are the exact reconstructions);
        PREFIX_ood.json, the AUROC of log p(x) telling the first N Fashion-MNIST test images from N images of
        each outlier set of jgen.eval.ood (uniform noise, inverted test images, 8x8 digits resized to 28x28),
        and FID-FMNIST / precision / recall of samples at temperatures 0.5, 0.7, 1.0 against the first
        --n-fid test images.
toy:    toy_densities.png, one row per run: test points, samples, and the model's density on a grid.
Sample grids at each temperature come from `jgen sample --kw temperature=T` (README). Writes next to this file;
nothing is written into the runs' workdirs.
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

from jgen.eval import likelihood, ood, plots, suite  # noqa: E402
from jgen.train import checkpoint  # noqa: E402


def interpolation(family, state, x, pairs, steps: int = 10) -> np.ndarray:
  """Strips [S, steps, H, W, C]: decode((1 - t) z_a + t z_b) for each pair (a, b) of images."""
  centred = (np.round(x * 255) + 0.5) / 256  # each pixel's dequantization cell centre: where the density lives
  z = jax.jit(family.encode)(state, jnp.asarray(centred))
  t = jnp.linspace(0.0, 1.0, steps)[:, None]
  latents = jnp.concatenate([(1 - t) * z[a] + t * z[b] for a, b in pairs])
  return np.asarray(jax.jit(family.decode)(state, latents)).reshape((len(pairs), steps) + x.shape[1:])


def images(args):
  config, family, state = checkpoint.restore_for_inference(args.workdir, "best")
  test, labels = suite.load_split(config.data.name, "test", limit=max(args.n_ood, args.n_fid, 1000))
  # Pairs of test images of different classes: the first image of each class with the first of the next.
  first = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
  pairs = [(first[c], first[(c + 1) % 10]) for c in range(0, 10, 2)] + [(first[1], first[9])]
  strips = interpolation(family, state, test, pairs)
  path = plots.save_interpolation_strips(np.clip(strips, 0, 1), os.path.join(HERE, f"{args.prefix}_interpolation.png"),
                                         title=f"{config.model.name}: latent interpolation between test images")
  print("wrote", path)

  n = args.n_ood
  t0 = time.perf_counter()
  inliers = ood.scores(family, state, test[:n], seed=0)
  dims = family.spec.dims
  bpd = lambda s: float(likelihood.dequantized_bits_per_dim(-np.mean(s), dims))
  row = {"workdir": args.workdir, "model": config.model.name, "step": int(state.step), "checkpoint": "best",
         "score": ood.score_kind(family), "n": n, "bits_per_dim": {"test": bpd(inliers)}, "auroc": {}}
  for name, x in ood.outlier_sets(test, n).items():
    s = ood.scores(family, state, x, seed=1)
    row["auroc"][name] = ood.auroc(inliers, s)
    row["bits_per_dim"][name] = bpd(s)
  row["seconds"] = round(time.perf_counter() - t0, 1)
  row["temperatures"] = {}
  for t in (0.5, 0.7, 1.0):
    fake = suite.draw_samples(family.with_overrides(f"model.temperature={t}"), state, args.n_fid)
    quality, _ = suite.sample_quality(test[:args.n_fid], fake)
    row["temperatures"][str(t)] = {k: v["value"] for k, v in quality.items()}
  row["n_fid"] = args.n_fid
  with open(os.path.join(HERE, f"{args.prefix}_ood.json"), "w") as f:
    json.dump(row, f, indent=2)
  print(json.dumps(row, indent=2))


def toy(args):
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(len(args.workdirs), 3, figsize=(10.5, 3.6 * len(args.workdirs)), dpi=100, squeeze=False)
  for row, workdir in zip(axes, args.workdirs):
    config, family, state = checkpoint.restore_for_inference(workdir, "best")
    test, _ = suite.load_split(config.data.name, "test", limit=5000)
    samples = np.asarray(jax.jit(lambda r: family.sample(state, r, 5000))(jax.random.key(0)))
    lim = float(np.abs(test).max()) * 1.15
    grid = np.linspace(-lim, lim, 300)
    xx, yy = np.meshgrid(grid, grid)
    points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
    density = np.exp(np.asarray(jax.jit(lambda p: family.log_density(state, p, None))(points))).reshape(xx.shape)
    mass = float(density.sum() * (grid[1] - grid[0]) ** 2)
    name = config.data.name.removeprefix("toy2d_")
    for ax, (pts, title) in zip(row[:2], ((test, f"{name}: test data"), (samples, f"{name}: flow samples"))):
      ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.3, color="tab:gray" if ax is row[0] else "tab:blue")
      ax.set_title(title, fontsize=10)
    row[2].imshow(density, extent=(-lim, lim, -lim, lim), origin="lower", cmap="magma")
    row[2].set_title(f"{name}: density (mass in the box {mass:.3f})", fontsize=10)
    for ax in row:
      ax.set_xlim(-lim, lim)
      ax.set_ylim(-lim, lim)
      ax.set_aspect("equal")
      ax.set_xticks([])
      ax.set_yticks([])
  fig.tight_layout()
  path = os.path.join(HERE, "toy_densities.png")
  fig.savefig(path, bbox_inches="tight")
  print("wrote", path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="what", required=True)
  p = sub.add_parser("images")
  p.add_argument("workdir")
  p.add_argument("--prefix", required=True)
  p.add_argument("--n-ood", type=int, default=2000)
  p.add_argument("--n-fid", type=int, default=2000)
  p.set_defaults(fn=images)
  p = sub.add_parser("toy")
  p.add_argument("workdirs", nargs="+")
  p.set_defaults(fn=toy)
  args = parser.parse_args()
  args.fn(args)


if __name__ == "__main__":
  main()
