#!/usr/bin/env bash
# The VAE study's CPU runs (2,000 steps of 128 each, the length the accelerator runs reached), scored once on
# the test split from the checkpoint best on validation; then outlier scores and latent figures.
#   bash experiments/vae/cpu_runs.sh runs/vae_cpu
set -euo pipefail
ROOT=${1:-runs/vae_cpu}
J=".venv/bin/jgen"
mkdir -p "$ROOT"
train() {  # name config [more jgen train flags]
  local name=$1 config=$2; shift 2
  $J train "$config" --workdir "$ROOT/$name" --quiet --set train.steps=2000 --set train.eval_every=1000 \
    --set train.ckpt_every=1000 "$@"
}
train ae configs/vae/ae_fashion_mnist.py:cpu
$J evaluate --workdir "$ROOT/ae" --checkpoint best --metrics fid,pr
train beta_vae configs/vae/beta_vae_fashion_mnist.py:cpu
$J evaluate --workdir "$ROOT/beta_vae" --checkpoint best --metrics nll,fid,pr
$J evaluate --workdir "$ROOT/beta_vae" --checkpoint best --metrics iwae --iwae-samples 1000 --num-examples 1000
train vae_logistic configs/vae/conv_fashion_mnist.py:logistic
$J evaluate --workdir "$ROOT/vae_logistic" --checkpoint best --metrics nll,fid,pr
# a 2-D latent for the decoded latent plane
train vae_2d configs/vae/conv_fashion_mnist.py:cpu --set model.latent_dim=2
# the classical models scored beside the VAEs in the outlier table
$J train configs/classical/ppca_fashion_mnist.py:full --workdir "$ROOT/ppca" --quiet
$J train configs/classical/gmm_fashion_mnist.py:full --workdir "$ROOT/gmm" --quiet
