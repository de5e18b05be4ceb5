#!/usr/bin/env bash
# Installs tcmalloc (Debian's libtcmalloc-minimal4), which `jgen` runs under where it is installed
# (jgen/host_allocator.py: XLA:CPU's per-step buffers then reuse their pages). Optional: without root or
# passwordless sudo it says so and exits 0, and jgen runs on glibc's malloc, slower on CPU.
set -uo pipefail

PKG=libtcmalloc-minimal4

ldconfig -p 2>/dev/null | grep -q "libtcmalloc" && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
    echo "note: tcmalloc is not installed and there is no root to install it; jgen runs on glibc's malloc (slower on CPU): \`sudo apt-get install -y $PKG\` adds it" >&2
    exit 0
  fi
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v apt-get >/dev/null; then
  echo "note: no apt-get here; install gperftools' tcmalloc with this system's package manager to run jgen faster on CPU" >&2
  exit 0
fi
echo "Installing $PKG with apt-get" >&2
$sudo apt-get install -y -q "$PKG" >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$PKG" >/dev/null; } \
  || echo "note: apt-get install $PKG failed; jgen runs on glibc's malloc (slower on CPU)" >&2
exit 0
