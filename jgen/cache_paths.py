"""Where jgen keeps what it fetches, prepares and compiles on a machine, and whether it can make a directory.

$JGEN_CACHE, else ~/.cache/jgen: the Debian packages' files unpacked without root (fashion-mnist/, fortunes/)
and the persistent compilation cache (xla/). Prepared datasets have their own variable, $JGEN_DATA_DIR
(jgen/data/sources.py).
"""

import os


def cache_home() -> str:
  return os.environ.get("JGEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jgen")


def nearest_existing(path: str) -> str:
  """`path` itself, or its nearest ancestor that exists."""
  path = os.path.abspath(path)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return path


def can_make_directory(path: str) -> bool:
  """Whether `path` is, or could be made as, a directory this process can write in (nothing is created)."""
  existing = nearest_existing(path)
  return os.path.isdir(existing) and os.access(existing, os.W_OK | os.X_OK)
