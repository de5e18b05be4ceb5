"""The unigram baseline of a text dataset: the entropy of the training split's character frequencies, and their
cross-entropy on the test split (add-one smoothed), in bits per character (end-of-document marks included).

  python experiments/sequences/unigram.py fortunes@128
"""

import sys

import numpy as np

from jgen.data import sources


def main(name: str = "fortunes@128"):
  vocab = sources.text_vocab(name)
  train, test = (sources.load(name, split).tokens for split in ("train", "test"))
  counts = np.bincount(train, minlength=len(vocab)).astype(np.float64)
  p = counts / counts.sum()
  entropy = -np.sum(p[p > 0] * np.log2(p[p > 0]))
  smoothed = (counts + 1.0) / (counts.sum() + len(vocab))
  print(f"{name}: {len(vocab)} ids, train {len(train):,} characters, test {len(test):,}")
  print(f"unigram entropy of train: {entropy:.3f} bits/char")
  print(f"unigram cross-entropy on test: {-np.mean(np.log2(smoothed[test])):.3f} bits/char")


if __name__ == "__main__":
  main(*sys.argv[1:])
