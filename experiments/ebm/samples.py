"""Figures and numbers of the EBM report that `jgen evaluate` does not give.

fmnist: a grid of long-run chains from noise, a grid of replay-buffer entries (the oldest), and FID-FMNIST
  against the first N test images for chains of several lengths from noise and for 60-step chains started
  from the buffer (the buffer keeps the state training left it in, as IGEBM reports its samples).
toy: the exact density exp(-E) / Z (Z by quadrature on the model's box) beside the test data and the
  model's samples; the quadrature nll on the whole test split beside a Gaussian fitted to the training
  split, and log Z at three grid resolutions (the quadrature's error).

  .venv/bin/python experiments/ebm/samples.py fmnist --workdir runs/ebm_fmnist_cpu --n 1000
  .venv/bin/python experiments/ebm/samples.py toy --workdir runs/ebm_moons_cpu

Writes PNGs and a JSON of the numbers into experiments/ebm/.
"""

import argparse
import json
import os
import time

import jax
import numpy as np

OUT = os.path.dirname(os.path.abspath(__file__))


def _write(name: str, result: dict) -> None:
  with open(os.path.join(OUT, name), "w") as f:
    json.dump(result, f, indent=2)
  print(json.dumps(result, indent=2))


def fmnist(workdir: str, n: int, tag: str) -> None:
  from jgen.eval import plots, suite
  from jgen.train import checkpoint
  from jgen.train.sampling import Sampler

  config, family, state = checkpoint.restore_for_inference(workdir)
  grid = Sampler(family).to_host(Sampler(family)(state, jax.random.key(0), 64))
  plots.save_image_grid(grid, os.path.join(OUT, f"{tag}_samples_noise.png"),
                        title=f"{config.model.sample_steps}-step Langevin chains from noise")
  buffer, age = np.asarray(state.buffers["replay"]["x"]), np.asarray(state.buffers["replay"]["age"])
  oldest = np.argsort(-age, kind="stable")[:64]
  plots.save_image_grid(np.asarray(family.to_data_space(buffer[oldest])), os.path.join(OUT, f"{tag}_buffer.png"),
                        title="replay buffer (64 oldest entries)")
  real, _ = suite.load_split(config.data.name, "test", limit=n)
  result = {"workdir": workdir, "step": int(state.step), "num_samples": n, "buffer_age_mean": float(age.mean()),
            "buffer_age_max": int(age.max()), "fid_fmnist": {}, "precision": {}, "recall": {}, "seconds": {}}
  settings = [("noise", 60), ("noise", 250), ("noise", 1000), ("buffer", 60)]
  for init, steps in settings:
    name = f"{init}_{steps}"
    chain = family.with_overrides(f"model.sample_init={init}", f"model.sample_steps={steps}")
    t0 = time.perf_counter()
    fake = suite.draw_samples(chain, state, n)
    metrics, _ = suite.sample_quality(real, fake, ("fid", "pr"))
    result["seconds"][name] = round(time.perf_counter() - t0, 1)
    for key in ("fid_fmnist", "precision", "recall"):
      result[key][name] = metrics[key]["value"]
    if init == "buffer":
      plots.save_image_grid(fake[:64], os.path.join(OUT, f"{tag}_samples_buffer.png"),
                            title=f"{steps}-step chains from the replay buffer")
  result["convention"] = suite.FID_CONVENTION
  _write(f"{tag}_samples.json", result)


def toy(workdir: str, tag: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from jgen.eval.suite import load_split
  from jgen.families.ebm import quadrature
  from jgen.train import checkpoint
  from jgen.train.sampling import Sampler

  config, family, state = checkpoint.restore_for_inference(workdir)
  x_test, _ = load_split(config.data.name, "test")
  x_train, _ = load_split(config.data.name, "train", limit=50_000)
  energy = jax.jit(lambda s, x: family.energy(s, x))
  log_z = {r: float(quadrature.log_normaliser(lambda x: energy(state, x), family.low, family.high, r))
           for r in (128, 256, 512)}
  nll = float(np.mean(np.asarray(energy(state, x_test)))) + log_z[config.model.quadrature_resolution]
  mean, cov = x_train.mean(0), np.cov(x_train.T)
  d = x_test - mean
  gauss = float(np.mean(0.5 * np.sum(d @ np.linalg.inv(cov) * d, 1) + 0.5 * np.log(np.linalg.det(2 * np.pi * cov))))
  samples = Sampler(family).to_host(Sampler(family)(state, jax.random.key(0), 2000))
  inside = float(np.mean(np.all((x_test >= family.low) & (x_test <= family.high), axis=1)))
  _write(f"{tag}_nll.json", {"workdir": workdir, "step": int(state.step), "dataset": config.data.name,
                             "num_test": len(x_test), "nll_quadrature": nll, "nll_gaussian_fit": gauss,
                             "log_z_by_resolution": log_z, "box": [family.low, family.high],
                             "test_inside_box": inside,
                             "convention": "nats per point; Z = sum over the grid of exp(-E) * cell area"})

  res = 256
  points, area = quadrature.grid(family.low, family.high, res)
  density = np.exp(-np.asarray(energy(state, points)) - log_z[res]).reshape(res, res)
  extent = (family.low, family.high, family.low, family.high)
  fig, axes = plt.subplots(1, 3, figsize=(15, 5), dpi=100)
  axes[0].hist2d(x_test[:, 0], x_test[:, 1], bins=res // 2, range=[extent[:2], extent[2:]], cmap="viridis")
  axes[0].set_title(f"test data ({len(x_test)} points)")
  axes[1].imshow(density, origin="lower", extent=extent, cmap="viridis")
  axes[1].set_title(f"EBM density exp(-E)/Z, nll {nll:.3f} nats")
  axes[2].scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5)
  axes[2].set_xlim(extent[:2]), axes[2].set_ylim(extent[2:])
  axes[2].set_title(f"{config.model.sample_steps}-step Langevin samples from noise")
  for ax in axes:
    ax.set_aspect("equal")
  fig.savefig(os.path.join(OUT, f"{tag}_density.png"), bbox_inches="tight")


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("what", choices=("fmnist", "toy"))
  p.add_argument("--workdir", required=True)
  p.add_argument("--n", type=int, default=1000, help="samples per FID-FMNIST (fmnist)")
  p.add_argument("--tag", default="", help="file name prefix (default: fmnist / moons)")
  args = p.parse_args()
  if args.what == "fmnist":
    fmnist(args.workdir, args.n, args.tag or "fmnist")
  else:
    toy(args.workdir, args.tag or "moons")


if __name__ == "__main__":
  main()
