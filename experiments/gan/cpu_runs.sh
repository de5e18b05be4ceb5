#!/usr/bin/env bash
# The GAN study's CPU runs: each trains its `cpu` variant (checkpoints ranked by FID-FMNIST on 2,000 validation
# samples, computed in the loop), then scores the best checkpoint once on the test split: FID / KID-FMNIST,
# precision / recall and the class diagnostics on 10,000 samples, FID at n = 2,000 for the comparison with the
# DDPM row, and the trained (not EMA) weights of the same checkpoint; then the figures.
#   bash experiments/gan/cpu_runs.sh runs/gan_cpu [dcgan cgan wgan_gp dcgan_sn ...]
set -euo pipefail
ROOT=${1:-runs/gan_cpu}
shift || true
RUNS=${*:-dcgan cgan wgan_gp}
J=".venv/bin/jgen"
OUT=experiments/gan
mkdir -p "$ROOT"

config_of() {  # run name -> config and extra flags
  case $1 in
    dcgan) echo "configs/gan/dcgan_fashion_mnist.py:cpu" ;;
    dcgan_sn) echo "configs/gan/dcgan_fashion_mnist.py:cpu --set model.spectral_norm=True --set model.loss=hinge" ;;
    cgan) echo "configs/gan/cgan_fashion_mnist.py:cpu --set model.spectral_norm=False" ;;
    cgan_sn) echo "configs/gan/cgan_fashion_mnist.py:cpu" ;;
    wgan_gp) echo "configs/gan/wgan_gp_fashion_mnist.py:cpu" ;;
    *) echo "unknown run $1" >&2; exit 2 ;;
  esac
}

for name in $RUNS; do
  dir="$ROOT/$name"
  # shellcheck disable=SC2046
  $J train $(config_of "$name") --workdir "$dir" --quiet
  $J evaluate --workdir "$dir" --checkpoint best --metrics fid --num-samples 2000 > /dev/null
  cp "$dir/eval.json" "$dir/eval_n2000.json"
  $J evaluate --workdir "$dir" --checkpoint best --metrics fid,pr,classes --num-samples 10000 > /dev/null
  $J evaluate --workdir "$dir" --checkpoint best --metrics fid,pr,classes --num-samples 10000 --weights trained > /dev/null
  $J sample --workdir "$dir" --checkpoint best --num 64 --out "$OUT/${name}_samples.png"
  $J latent interpolate --workdir "$dir" --checkpoint best --from 1 --to 2 --steps 10 --spherical \
    --out "$OUT/${name}_interpolation.png"
  if [[ $name == cgan* ]]; then
    $J sample --workdir "$dir" --checkpoint best --per-class 10 --out "$OUT/${name}_per_class.png"
  fi
done
.venv/bin/python experiments/gan/table.py "$ROOT" > "$OUT/table.md"
cat "$OUT/table.md"
