"""`jgen` runs under tcmalloc where it is installed, so XLA:CPU's per-step buffers do not fault in fresh pages.

XLA:CPU allocates one buffer for a compiled function's temporaries at every call and frees it at the end.
glibc's malloc serves any request over 32 MiB (its largest mmap threshold) with a fresh `mmap` and returns it
with `munmap`, so every step touches every page of a new mapping and the kernel zero-fills each one on a fault:
the PixelCNN `cpu` step's temporaries are 157 MiB, 40,090 page faults a step; the transformer's 63,205; the
U-Net's 112,900. tcmalloc keeps freed memory and hands the same pages back at the next step. Measured on 2
cores (benchmarks/README.md, "Host memory"): the PixelCNN `cpu` step 15.9 -> 29.5 steps/s, the transformer's
5.82 -> 8.16. glibc's own options cannot do it without a cost: one arena for all threads (a worker thread's
arena maps any block over 64 MiB whatever M_MMAP_MAX says) made the conv VAE's step 25 % slower.

An allocator can only be chosen when a process starts, so `use_tcmalloc()` starts the process again (`execve`,
same pid, same arguments) with the library in `LD_PRELOAD`. The `jgen` command and `python -m jgen` call it
before importing anything else; the benchmark scripts call it too. It does nothing where the library is not
installed (Debian/Ubuntu: `apt-get install libtcmalloc-minimal4`; `make install` does), off Linux, where
`LD_PRELOAD` is already set (the user's choice of allocator wins), or with `JGEN_ALLOCATOR=system`;
`JGEN_ALLOCATOR=tcmalloc` makes a missing library an error instead.

tcmalloc keeps the freed memory resident: the PixelCNN `cpu` run's RSS is ~870 MB under it and ~705 MB on
glibc, flat over 400 steps in both. Results are bit-identical (the same compiled code on the same values).
"""

import ctypes.util
import os
import platform
import sys

from jgen.errors import UserError

LIBRARIES = ("tcmalloc_minimal", "tcmalloc")  # gperftools' malloc without, then with, its profilers
# tcmalloc reports every allocation over 1 GiB on stderr by default; a big run's buffers are not news.
QUIET = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(2**50)}


def find_tcmalloc() -> str | None:
  """The tcmalloc library's name for the dynamic loader, or None where it is not installed."""
  for name in LIBRARIES:
    found = ctypes.util.find_library(name)
    if found:
      return found
  return None


def preload_environment(environ=None, find=find_tcmalloc) -> dict | None:
  """The environment to start this process again with (tcmalloc preloaded), or None to run as it is.

  `JGEN_ALLOCATOR`: unset or "" (tcmalloc where installed), "system" (never), "tcmalloc" (required: a
  UserError where it is not installed).
  """
  environ = dict(os.environ if environ is None else environ)
  choice = environ.get("JGEN_ALLOCATOR", "")
  if choice not in ("", "system", "tcmalloc"):
    raise UserError(f"JGEN_ALLOCATOR={choice!r}: use tcmalloc or system, or leave it unset (tcmalloc where installed)")
  if choice == "system" or environ.get("LD_PRELOAD", "").strip():
    return None
  library = find() if platform.system() == "Linux" else None
  if library is None:
    if choice == "tcmalloc":
      raise UserError("JGEN_ALLOCATOR=tcmalloc, but tcmalloc is not installed here: `sudo apt-get install -y "
                      "libtcmalloc-minimal4`, or unset JGEN_ALLOCATOR")
    return None
  return {**QUIET, **environ, "LD_PRELOAD": library}


def loaded() -> bool:
  """Whether tcmalloc is mapped into this process."""
  try:
    with open("/proc/self/maps") as maps:
      return "libtcmalloc" in maps.read()
  except OSError:
    return False


def current() -> str:
  """"tcmalloc" where it is loaded in this process, else "system" (for benchmark reports)."""
  return "tcmalloc" if loaded() else "system"


def use_tcmalloc() -> None:
  """Starts this process again under tcmalloc (does not return) where `preload_environment` says so."""
  env = preload_environment()
  if env is None or not sys.executable or not sys.orig_argv:  # no interpreter to start again (embedded python)
    return
  sys.stdout.flush()
  sys.stderr.flush()
  try:
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
  except OSError:  # could not start again: run on as we are, on the system's malloc
    pass
