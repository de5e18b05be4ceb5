#!/usr/bin/env bash
# The VAE study's figures, all through `jgen sample` / `jgen latent`, from the runs of run_studies.py (accelerator)
# and cpu_runs.sh (CPU):
#   bash experiments/vae/figures.sh runs/gpu runs/vae_cpu experiments/vae
set -euo pipefail
GPU=${1:-runs/gpu}; CPU=${2:-runs/vae_cpu}; OUT=${3:-experiments/vae}
J=".venv/bin/jgen"
B="--checkpoint best"
# AE vs VAE: the latent maps of the test set and what decoding z ~ N(0, I) gives
$J latent map --workdir "$CPU/ae" $B --out "$OUT/ae_latent_map.png"
$J latent map --workdir "$GPU/vae" $B --out "$OUT/vae_latent_map.png"
$J sample --workdir "$CPU/ae" $B --num 64 --out "$OUT/ae_samples.png"
$J sample --workdir "$GPU/vae" $B --num 64 --out "$OUT/vae_samples.png"
$J sample --workdir "$GPU/resvae" $B --num 64 --out "$OUT/resvae_samples.png"
# a 2-D latent: the test set in the plane and the decoded grid over it
$J latent map --workdir "$CPU/vae_2d" $B --out "$OUT/vae2d_latent_map.png"
# interpolation strips between two test images (a sneaker and a trouser), linear and spherical
$J latent interpolate --workdir "$GPU/vae" $B --from 0 --to 2 --steps 10 --out "$OUT/vae_interpolation.png"
$J latent interpolate --workdir "$GPU/vae" $B --from 0 --to 2 --steps 10 --spherical --out "$OUT/vae_slerp.png"
$J latent interpolate --workdir "$CPU/ae" $B --from 0 --to 2 --steps 10 --out "$OUT/ae_interpolation.png"
# attribute arithmetic: sandals plus strength x (mean sneaker - mean sandal); the CVAE's class morph
$J latent arithmetic --workdir "$GPU/vae" $B --attribute sneaker-sandal --strengths 0,0.25,0.5,0.75,1,1.25 --out "$OUT/vae_sneaker_minus_sandal.png"
$J latent arithmetic --workdir "$GPU/cvae" $B --attribute sneaker-sandal --num 6 --out "$OUT/cvae_class_morph.png"
# per-class grid of the CVAE (one row per class)
$J sample --workdir "$GPU/cvae" $B --num 100 --out "$OUT/cvae_samples.png"
