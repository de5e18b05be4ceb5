#!/usr/bin/env bash
# Makes sure the fortunes corpus (Debian's `fortunes`) the sequence models read is on this machine (`make data`).
#   1. $JGEN_FORTUNES_DIR, /usr/share/games/fortunes or the cache holds it: nothing to do.
#   2. root or passwordless sudo: apt-get install -y fortunes.
#   3. otherwise: apt-get download the .deb and unpack it (dpkg-deb -x) into
#      ${JGEN_CACHE:-$HOME/.cache/jgen}/fortunes, where jgen.data.text looks.
#   4. none worked: one line saying what to run, exit 2.
# JGEN_FORTUNES_NO_ROOT=1 skips step 2 (to test step 3 as root).
set -uo pipefail

PKG=fortunes
SYSTEM_DIR=/usr/share/games/fortunes
CACHE_DIR="${JGEN_CACHE:-$HOME/.cache/jgen}/fortunes"

has_files() {  # the package's collections: files with a .dat index next to them
  compgen -G "$1/*.dat" >/dev/null
}

give_up() {
  echo "the fortunes corpus was not found and could not be fetched ($1): run \`sudo apt-get install -y $PKG\`, or set JGEN_FORTUNES_DIR to a directory holding it" >&2
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

if [ -n "${JGEN_FORTUNES_DIR:-}" ]; then
  has_files "$JGEN_FORTUNES_DIR" && exit 0
  echo "JGEN_FORTUNES_DIR=$JGEN_FORTUNES_DIR holds no fortunes collections: point it at a directory holding them, or unset it and run \`sudo apt-get install -y $PKG\`" >&2
  exit 2
fi
has_files "$SYSTEM_DIR" && exit 0
has_files "$CACHE_DIR" && exit 0

if [ "${JGEN_FORTUNES_NO_ROOT:-0}" != 1 ] && install_as_root && has_files "$SYSTEM_DIR"; then
  exit 0
fi
download_to_cache && has_files "$CACHE_DIR" && exit 0
give_up "apt-get install needs root or passwordless sudo, and apt-get download $PKG failed"
