#!/usr/bin/env bash
# Outlier AUROC of the Fashion-MNIST test set (first 2,000 images) against noise, inverted test images and
# scikit-learn's digits resized to 28x28, for every run given, through `jgen score`; then the table.
#   bash experiments/vae/outliers.sh experiments/vae/outliers runs/gpu/vae runs/gpu/resvae runs/ppca ...
set -euo pipefail
OUT=$1; shift
mkdir -p "$OUT"
for run in "$@"; do
  name=$(basename "$run")
  for against in noise inverted digits28; do
    .venv/bin/jgen score --workdir "$run" --checkpoint best --data fashion_mnist --split test --num-examples 2000 \
      --against "$against" --out "/tmp/jgen_scores_${name}_${against}.npy"
    cp "/tmp/jgen_scores_${name}_${against}.json" "$OUT/${name}_${against}.json"
  done
done
