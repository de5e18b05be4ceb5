"""One `jgen train` per workdir: an advisory lock held for the whole run.

A second run started on a workdir that a live run holds is refused in one line
before it writes anything. The lock is the operating system's (`flock`), so a run
killed at any moment releases it with its process; the file stays and says who
held it last.
"""

import contextlib
import fcntl
import os

from jgen.errors import UserError

LOCK_NAME = ".jgen_train.lock"


@contextlib.contextmanager
def held(workdir: str, enabled: bool = True):
  """Holds `workdir`'s lock for the `with` block (only on the process that writes, `enabled`)."""
  if not enabled:
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  f = open(os.path.join(workdir, LOCK_NAME), "a+")
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    f.seek(0)
    owner = f.read().strip() or "another process"
    f.close()
    raise UserError(f"workdir {workdir!r} is in use by another `jgen train` ({owner}): wait for it to finish, "
                    f"or pass another --workdir") from None
  try:
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    yield
  finally:
    fcntl.flock(f, fcntl.LOCK_UN)
    f.close()
