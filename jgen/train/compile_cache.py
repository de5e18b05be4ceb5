"""jax's persistent compilation cache, on for jgen's commands: a program compiled once is read back, not
compiled again, by any later run of the same program on the same machine.

The same program is a resume (after a kill, a preemption, Ctrl-C), another seed or workdir of a config, or
`jgen sample` / `evaluate` / `score` / `latent` on a run; a change of the config's shapes, hyperparameters
baked into the step, jax's version, the device or the compiler options (jgen/train/compile_options.py) is a
new key and compiles afresh. On the 2-core CPU the DDPM U-Net `full` config reaches its first step in 9.6 s
from the cache against 19.8-24.1 s compiling (benchmarks/README.md, "Compiled programs kept between runs").

Where: $JGEN_CACHE/xla, else ~/.cache/jgen/xla, at most 4 GiB (jax evicts the least recently used programs;
its file lock, the `filelock` package, keeps one process from reading an entry another is writing). jax only
keeps programs that took a second or more to compile. `JAX_COMPILATION_CACHE_DIR` in the environment is left
to jax: a directory of one's own, or empty for no cache at all. A directory that cannot be written means no
cache, and the run goes on compiling as before. An entry that cannot be read back (a process killed while
writing it) is compiled afresh and written again, with one line that says so.

Only the commands turn it on (jgen/cli.py): code that calls `jgen.train.loop.train` from Python keeps jax's
settings as it has them, and calls `use_persistent_cache()` first to get the same.
"""

import os
import re
import warnings

import jax

from jgen import cache_paths
from jgen.errors import notice

MAX_BYTES = 4 << 30


def directory() -> str:
  return os.path.join(cache_paths.cache_home(), "xla")


def use_persistent_cache(path: str | None = None) -> str | None:
  """Turn the cache on, in `path` or `directory()`, before anything compiles, unless the environment names
  one; the directory in use, or None."""
  if "JAX_COMPILATION_CACHE_DIR" in os.environ:  # jax read it at import: the user's choice, "" for none
    return os.environ["JAX_COMPILATION_CACHE_DIR"] or None
  path = path or directory()
  if not cache_paths.can_make_directory(path):  # jax makes it at the first compile: a bad input leaves none
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ:
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
  _one_line_warnings(path)
  return path


_UNREADABLE = "Error reading persistent compilation cache entry for "
_UNWRITABLE = "Error writing persistent compilation cache entry for "


def _one_line_warnings(path: str) -> None:
  """jax warns with a line of its source when an entry cannot be read back, compiles the program, and would not
  replace the entry (it writes only keys it does not have): one line instead, and the program's entries go,
  so that the fresh compile is written. A failed write (a full disk) is left unsaid: the run needs no cache,
  and a full disk is reported where it matters, by the checkpoint it stops."""
  shown = warnings.showwarning

  def show(message, category, filename, lineno, file=None, line=None):
    text = str(message)
    if text.startswith(_UNREADABLE):
      what = text[len(_UNREADABLE):]
      _remove_entries(path, re.sub(r"-[0-9a-f]{64}$", "", what.split("'")[1]))
      notice(f"the compilation cache could not read back {what}; compiled it afresh in place of the damaged "
             f"entry (in {path})")
    elif not text.startswith(_UNWRITABLE):
      shown(message, category, filename, lineno, file, line)

  warnings.showwarning = show


def _remove_entries(path: str, program: str) -> None:
  """The entries of `program` (files PROGRAM-<sha256>-cache and -atime, as jax names them)."""
  own = re.compile(re.escape(program) + r"-[0-9a-f]{64}-(cache|atime)")
  try:
    for name in os.listdir(path):
      if own.fullmatch(name):
        os.remove(os.path.join(path, name))
  except OSError:  # gone already (another process healed it), or not ours to remove: compiled afresh either way
    pass
