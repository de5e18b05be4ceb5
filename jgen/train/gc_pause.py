"""Python's cyclic garbage collector paused while a run traces its networks and step.

Tracing allocates hundreds of thousands of small objects, which keeps triggering the collector, and each of
its full collections walks every live object of the process (jax, flax, the traced program): ~0.2 s apiece
once the DDPM U-Net `full` config is built. Measured on 2 CPU cores (benchmarks/README.md, "Start-up"): its
`Runner.setup` 1.0 -> 0.7 s and the step's trace 1.6 -> 1.0 s with the collector off, with ~6,000 unreachable
objects (cycles of tracers) left to collect after, one ordinary collection's work.

Pauses nest and may overlap across threads (the step is traced in the compile-ahead thread while the main
thread initialises): the collector is on again when the last one ends, and only if it was on when the first began.
"""

import contextlib
import gc
import threading

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def paused():
  """No automatic garbage collection inside the block (of any thread), unless another pause is still open."""
  global _depth, _was_enabled
  with _lock:
    if _depth == 0:
      _was_enabled = gc.isenabled()
      gc.disable()
    _depth += 1
  try:
    yield
  finally:
    with _lock:
      _depth -= 1
      if _depth == 0 and _was_enabled:
        gc.enable()
