#!/usr/bin/env bash
# Makes sure the Fashion-MNIST IDX files the tests read are on this machine (`make data`).
#   1. $JGEN_FASHION_MNIST_DIR, /usr/share/datasets/fashion-mnist or the cache holds them: nothing to do.
#   2. root or passwordless sudo: apt-get install -y dataset-fashion-mnist.
#   3. otherwise: apt-get download the .deb and unpack it (dpkg-deb -x) into
#      ${JGEN_CACHE:-$HOME/.cache/jgen}/fashion-mnist, where jgen.data.builders looks.
#   4. none worked: one line saying what to run, exit 2.
# JGEN_FMNIST_NO_ROOT=1 skips step 2 (to test step 3 as root).
set -uo pipefail

PKG=dataset-fashion-mnist
SYSTEM_DIR=/usr/share/datasets/fashion-mnist
CACHE_DIR="${JGEN_CACHE:-$HOME/.cache/jgen}/fashion-mnist"
STEMS="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

has_files() {  # every IDX file is in $1, gzipped or not
  local stem
  for stem in $STEMS; do
    [ -f "$1/$stem.gz" ] || [ -f "$1/$stem" ] || return 1
  done
}

give_up() {
  echo "Fashion-MNIST IDX files not found and could not be fetched ($1): run \`sudo apt-get install -y $PKG\`, or set JGEN_FASHION_MNIST_DIR to a directory holding them" >&2
  exit 2
}

install_as_root() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
    sudo="sudo -n"
  fi
  echo "Installing $PKG with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "$PKG" && return 0
  apt-cache show "$PKG" >/dev/null 2>&1 && return 1  # known package, failed for another reason
  $sudo apt-get update -q && $sudo apt-get install -y -q "$PKG"
}

download_to_cache() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
  echo "Downloading $PKG into $CACHE_DIR (no root)" >&2
  # Unpack next to the cache directory, so that moving it into place is one rename.
  mkdir -p "$(dirname "$CACHE_DIR")" && tmp="$(mktemp -d "$CACHE_DIR.tmp.XXXXXX")" || return 1
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download "$PKG") || return 1
  mkdir -p "$tmp/root" && dpkg-deb -x "$tmp"/"$PKG"_*.deb "$tmp/root" || return 1
  has_files "$tmp/root$SYSTEM_DIR" || return 1
  rm -rf "$CACHE_DIR" && mv "$tmp/root$SYSTEM_DIR" "$CACHE_DIR"
}

if [ -n "${JGEN_FASHION_MNIST_DIR:-}" ]; then
  has_files "$JGEN_FASHION_MNIST_DIR" && exit 0
  echo "JGEN_FASHION_MNIST_DIR=$JGEN_FASHION_MNIST_DIR holds no Fashion-MNIST IDX files: point it at a directory holding them, or unset it and run \`sudo apt-get install -y $PKG\`" >&2
  exit 2
fi
has_files "$SYSTEM_DIR" && exit 0
has_files "$CACHE_DIR" && exit 0

if [ "${JGEN_FMNIST_NO_ROOT:-0}" != 1 ] && install_as_root && has_files "$SYSTEM_DIR"; then
  exit 0
fi
download_to_cache && has_files "$CACHE_DIR" && exit 0
give_up "apt-get install needs root or passwordless sudo, and apt-get download $PKG failed"
