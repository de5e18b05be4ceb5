"""Reference rows for FID-FMNIST, KID and precision/recall: the floor and a few corruptions, to show the scale.

Each row compares the Fashion-MNIST test set with a stand-in for "samples":
a training subset of the same size (the floor a perfect model would reach),
the test images with Gaussian noise or blur, and one class only. Print them with
`python -m jgen.eval.reference [num_samples]`.
"""

import sys
import time

import numpy as np
import scipy.ndimage

from jgen.eval import suite

ONE_CLASS = 1  # Trouser


def corruptions(test_x, train_x, train_labels, num_samples: int, seed: int = 0) -> dict[str, np.ndarray]:
  """name -> images standing in for samples (float32 [N,28,28,1] in [0,1])."""
  rng = np.random.default_rng(seed)
  clean = test_x[:num_samples]
  one_class = train_x[train_labels == ONE_CLASS]
  return {
      "train subset (floor)": train_x[rng.choice(len(train_x), num_samples, replace=False)],
      "test + noise sd 0.05": np.clip(clean + 0.05 * rng.normal(size=clean.shape), 0, 1).astype(np.float32),
      "test + noise sd 0.2": np.clip(clean + 0.2 * rng.normal(size=clean.shape), 0, 1).astype(np.float32),
      "test blurred (sd 1 px)": scipy.ndimage.gaussian_filter(clean, sigma=(0, 1, 1, 0)),
      "test blurred (sd 2 px)": scipy.ndimage.gaussian_filter(clean, sigma=(0, 2, 2, 0)),
      "one class only (train trousers)": one_class[rng.choice(len(one_class), min(num_samples, len(one_class)),
                                                              replace=False)],
  }


def reference_rows(num_samples: int = 10000, feature_network=None, data=None) -> list[dict]:
  """Rows {name, n, fid_fmnist, kid_fmnist, precision, recall, seconds} against the first `num_samples` test images.

  `data` = (test_x, train_x, train_labels) replaces reading Fashion-MNIST.
  """
  if data is None:
    test_x, _ = suite.load_split("fashion_mnist", "test")
    train_x, train_labels = suite.load_split("fashion_mnist", "train")
  else:
    test_x, train_x, train_labels = data
  num_samples = min(num_samples, len(test_x))
  real = test_x[:num_samples]
  rows = []
  for name, fake in corruptions(test_x, train_x, train_labels, num_samples).items():
    t0 = time.perf_counter()
    out, _ = suite.sample_quality(real, fake, ("fid", "pr"), feature_network)
    rows.append({"name": name, "n": len(fake), "fid_fmnist": out["fid_fmnist"]["value"],
                 "kid_fmnist": out["kid_fmnist"]["value"], "precision": out["precision"]["value"],
                 "recall": out["recall"]["value"], "seconds": time.perf_counter() - t0})
  return rows


def format_rows(rows: list[dict]) -> str:
  lines = ["| reference vs test set | n | FID-FMNIST | KID-FMNIST | precision | recall |",
           "| --- | --- | --- | --- | --- | --- |"]
  lines += [f"| {r['name']} | {r['n']} | {r['fid_fmnist']:.3f} | {r['kid_fmnist']:.4f} | {r['precision']:.3f} "
            f"| {r['recall']:.3f} |" for r in rows]
  return "\n".join(lines)


def main(argv=None):
  args = argv if argv is not None else sys.argv[1:]
  print(format_rows(reference_rows(int(args[0]) if args else 10000)))


if __name__ == "__main__":
  main()
