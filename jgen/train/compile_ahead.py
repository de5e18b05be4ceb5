"""A jitted function compiled in a background thread while the run does other work.

A run's first train step waits for XLA to compile it: ~11 s for the DDPM U-Net `full` step on 2 CPU cores,
longer than restoring a checkpoint or running the jitted init. Both of those only need the step's abstract
signature, which is known once `Runner.setup` has the abstract state, so the loop starts compiling the step
first and restores or initialises meanwhile (XLA compiles without holding Python's GIL).

`jax.jit`'s own cache does not see an ahead-of-time compile, so the loop calls the `Compiled` executable
itself. It checks shapes, dtypes and shardings as jit would (a mismatch is a TypeError / ValueError before
anything runs, and donation is the jitted function's). An error in tracing or compiling is raised where the
compiled function is first called, as jit raises it on its first call.
"""

import threading

from jgen.train import gc_pause


class CompiledAhead:
  """`jitted` traced, lowered and compiled for `args` (arrays or `jax.ShapeDtypeStruct`s with shardings) in a
  background thread; calling it waits for the compile, then runs the executable."""

  def __init__(self, jitted, *args):
    self._compiled = None
    self._error = None
    self._call = None  # the executable, once a call has waited for it
    # Not a daemon: a daemon thread still inside XLA when the interpreter shuts down aborts the process
    # ("FATAL: exception not rethrown", exit 134, seen after Ctrl-C). A run stopped before its first step prints
    # its message at once and exits when the compile ends, as a compile on the main thread would have made it.
    self._thread = threading.Thread(target=self._compile, args=(jitted, args), name="jgen-compile-ahead")
    self._thread.start()

  def _compile(self, jitted, args):
    try:
      with gc_pause.paused():  # tracing
        lowered = jitted.trace(*args).lower()
      self._compiled = lowered.compile()
    except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread at the first call)
      self._error = e

  def result(self):
    """The compiled executable, once the background compile has finished; its error, if it failed."""
    self._thread.join()
    if self._error is not None:
      raise self._error
    return self._compiled

  def __call__(self, *args):
    if self._call is None:  # only the first call waits; later steps go straight to the executable
      self._call = self.result()
    return self._call(*args)
