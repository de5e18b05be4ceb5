"""Classical latent-variable models: robust subspaces and pruned mixtures (figures + table).

  .venv/bin/python experiments/classical/run.py [--fmnist]

1. Data from a known linear model x = W z + noise with 5 % gross outliers: the
   subspace found by noise-free PCA, PPCA and Student-t PPCA against the truth
   (a 2-D picture and principal angles in 10-D over several seeds).
2. A Bayesian GMM with K_max = 10 on a mixture whose true K is 3: the expected
   weights after variational inference, with a Dirichlet and a stick-breaking prior.
3. With --fmnist: the Fashion-MNIST baselines of configs/classical (PPCA, GMM),
   run through their Family objects, in bits/dim on the test set, with samples.
Writes PNGs next to this file and prints the tables the README quotes.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

from jgen.families.classical import bgmm  # noqa: E402
from jgen.families.classical import ppca  # noqa: E402
from jgen.families.classical import robust_ppca as rppca  # noqa: E402
from jgen.families.classical import synthetic  # noqa: E402


def _fit_all(x, k, em_iters=100):
  """(PCA directions, PPCA W, Student-t PPCA W) for the rows of x."""
  xj = jnp.asarray(x)
  mean = jnp.mean(xj, axis=0)
  _, _, vt = jnp.linalg.svd(xj - mean, full_matrices=False)
  gaussian = ppca.fit(xj, k)
  robust = rppca.init(xj, k)
  step = jax.jit(rppca.em_step)
  for _ in range(em_iters):
    robust = step(robust, xj)
  return {"PCA (noise-free)": (np.asarray(mean), np.asarray(vt[:k].T)),
          "PPCA": (np.asarray(gaussian.mu), np.asarray(gaussian.w)),
          "Student-t PPCA": (np.asarray(robust.mu), np.asarray(robust.w))}, float(robust.nu)


def _angle_deg(w, truth):
  return float(np.degrees(np.max(scipy.linalg.subspace_angles(w, truth))))


def subspace_figure(path):
  rng = np.random.default_rng(0)
  x, w_true, outlier = synthetic.linear_with_outliers(rng, 300, 2, 1, outlier_fraction=0.05, noise=0.15)
  # Gross outliers: a clump 10-14 units off the line, across it.
  across = np.array([-w_true[1, 0], w_true[0, 0]])
  x[outlier] = np.outer(rng.uniform(10.0, 14.0, outlier.sum()), across) + rng.normal(size=(outlier.sum(), 2))
  fits, nu = _fit_all(x, 1)
  fig, ax = plt.subplots(figsize=(5.5, 5.5))
  ax.scatter(*x[~outlier].T, s=6, c="0.6", label="inliers")
  ax.scatter(*x[outlier].T, s=18, marker="x", c="k", label="outliers (5 %)")
  t = np.linspace(-16, 16, 2)
  ax.plot(t * w_true[0, 0], t * w_true[1, 0], "k--", lw=2, label="true subspace")
  styles = {"PCA (noise-free)": ("tab:blue", "-"), "PPCA": ("tab:orange", ":"), "Student-t PPCA": ("tab:green", "-")}
  rows = []
  for name, (mu, w) in fits.items():
    d = w[:, 0] / np.linalg.norm(w[:, 0])
    color, ls = styles[name]
    angle = _angle_deg(w, w_true)
    rows.append((name, angle))
    ax.plot(mu[0] + t * d[0], mu[1] + t * d[1], color=color, ls=ls, lw=2, label=f"{name}: {angle:.1f} deg off")
  ax.set_xlim(-16, 16)
  ax.set_ylim(-16, 16)
  ax.set_aspect("equal")
  ax.legend(loc="lower right", fontsize=8)
  ax.set_title(f"Fitted 1-D subspaces with gross outliers (t-PPCA nu = {nu:.1f})")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return rows


def subspace_table(seeds=5):
  """Largest principal angle (degrees) to the true 2-D subspace of 10-D data with 5 % outliers."""
  angles = {}
  for seed in range(seeds):
    x, w_true, _ = synthetic.linear_with_outliers(np.random.default_rng(seed), 1000, 10, 2, outlier_fraction=0.05,
                                                  noise=0.1, outlier_scale=30.0)
    fits, _ = _fit_all(x, 2)
    for name, (_, w) in fits.items():
      angles.setdefault(name, []).append(_angle_deg(w, w_true))
  return {name: (np.mean(a), np.std(a)) for name, a in angles.items()}


def bgmm_figure(path, iters=200):
  centers = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
  x, _ = synthetic.blobs(np.random.default_rng(0), 200, centers, std=0.8)
  xj = jnp.asarray(x)
  k = 10
  prior = bgmm.default_prior(xj, k)
  resp = jax.random.dirichlet(jax.random.key(0), jnp.ones(k), (x.shape[0],))
  results = {}
  for label, dp in (("Dirichlet(1/K)", False), ("stick-breaking DP(1/K)", True)):
    post = bgmm.m_step(prior, xj, resp, dp)
    step = jax.jit(lambda p, dp=dp: bgmm.step(prior, p, xj, dp))
    elbos = []
    for _ in range(iters):
      post, elbo = step(post)
      elbos.append(float(elbo))
    results[label] = (post, np.asarray(elbos))
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  post = results["stick-breaking DP(1/K)"][0]
  weights = np.asarray(bgmm.expected_weights(post))
  axes[0].scatter(*x.T, s=5, c="0.6")
  for w, m, s, nu in zip(weights, np.asarray(post.means), np.asarray(post.inv_scale), np.asarray(post.dof)):
    if w < 0.01:
      continue
    evals, evecs = np.linalg.eigh(s / nu)
    angle = np.linspace(0, 2 * np.pi, 100)
    ellipse = m + (evecs @ (2 * np.sqrt(evals)[:, None] * np.stack([np.cos(angle), np.sin(angle)]))).T
    axes[0].plot(*ellipse.T, lw=2)
  axes[0].set_title("DP prior: components with weight > 0.01 (2 sd)")
  axes[0].set_aspect("equal")
  width = 0.4
  for i, (label, (p, _)) in enumerate(results.items()):
    axes[1].bar(np.arange(k) + (i - 0.5) * width, np.asarray(bgmm.expected_weights(p)), width, label=label)
  axes[1].axhline(0.01, color="k", lw=0.8, ls="--")
  axes[1].set_xlabel("component")
  axes[1].set_ylabel("E[weight]")
  axes[1].set_title("K_max = 10, true K = 3: pruned weights")
  axes[1].legend(fontsize=8)
  for label, (_, elbos) in results.items():
    axes[2].plot(elbos, label=label)
  axes[2].set_xlabel("iteration")
  axes[2].set_ylabel("ELBO (nats)")
  axes[2].set_title("The ELBO never decreases")
  axes[2].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  table = {}
  for label, (p, elbos) in results.items():
    w = np.asarray(bgmm.expected_weights(p))
    table[label] = (int(np.sum(w > 0.01)), np.sort(w)[::-1], bool(np.all(np.diff(elbos) >= -1e-9 * np.abs(elbos).max())))
  return table


def fmnist_baselines(path):
  """The configs' full variants through their Family objects (not the CLI loop), test-set bits/dim."""
  from jgen import config as config_lib
  from jgen import registry
  from jgen.data.idx import read_idx

  root = os.path.dirname(os.path.dirname(HERE))
  data = "/usr/share/datasets/fashion-mnist"
  train = read_idx(f"{data}/train-images-idx3-ubyte.gz")[..., None].astype(np.float32) / 255.0
  test = read_idx(f"{data}/t10k-images-idx3-ubyte.gz")[..., None].astype(np.float32) / 255.0
  rows, grids = [], []
  for name in ("ppca_fashion_mnist", "gmm_fashion_mnist"):
    config = config_lib.load(os.path.join(root, "configs", "classical", f"{name}.py:full"))
    family = registry.build(config)
    batch = {"x": jnp.asarray(train)}
    state = jax.jit(family.init)(jax.random.key(config.train.seed), batch)
    step = jax.jit(family.train_step)
    for i in range(config.train.steps):
      state, metrics = step(state, batch, jax.random.fold_in(jax.random.key(config.train.seed), i))
    ev = jax.jit(family.eval_step)(state, {"x": jnp.asarray(test)}, jax.random.key(1))
    rows.append((name, config.model.name, float(metrics["bits_per_dim"]), float(jnp.mean(ev["bits_per_dim"])),
                 float(jnp.mean(ev["nll"]))))
    grids.append((name, np.asarray(family.sample(state, jax.random.key(2), 32))))
    print(rows[-1], flush=True)
  fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
  for ax, (name, s) in zip(axes, grids):
    ax.imshow(s.reshape(4, 8, 28, 28).transpose(0, 2, 1, 3).reshape(4 * 28, 8 * 28), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"samples: {name}")
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--fmnist", action="store_true", help="also fit the Fashion-MNIST baselines (minutes on CPU)")
  args = parser.parse_args()
  with jax.enable_x64(True):
    rows = subspace_figure(os.path.join(HERE, "subspaces.png"))
    print("\n2-D example (figure subspaces.png): angle to the true subspace")
    for name, angle in rows:
      print(f"| {name} | {angle:.2f} deg |")
    print("\n10-D, k = 2, 1000 points, 5 % outliers, 5 seeds: largest principal angle to the truth (mean +- sd)")
    for name, (m, s) in subspace_table().items():
      print(f"| {name} | {m:.2f} +- {s:.2f} deg |")
    print("\nBGMM, K_max = 10, true K = 3 (figure bgmm_pruning.png)")
    for label, (active, w, monotone) in bgmm_figure(os.path.join(HERE, "bgmm_pruning.png")).items():
      print(f"| {label} | {active} | {', '.join(f'{v:.3f}' for v in w[:5])}, ... | {'yes' if monotone else 'NO'} |")
  if args.fmnist:
    print("\nFashion-MNIST baselines (figure fmnist_samples.png)")
    for name, model, train_bpd, test_bpd, nll in fmnist_baselines(os.path.join(HERE, "fmnist_samples.png")):
      print(f"| {name} | {model} | {train_bpd:.3f} | {test_bpd:.3f} | {nll:.1f} |")


if __name__ == "__main__":
  main()
