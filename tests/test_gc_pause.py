"""The garbage collector pause around tracing (jgen/train/gc_pause.py): nested and overlapping pauses, the
collector's state restored after, and a training run that leaves it on."""

import gc
import threading

import pytest

from jgen.train import gc_pause
from tests.test_compile_ahead import _train


@pytest.fixture(autouse=True)
def collector_on_after():
  yield
  gc.enable()


def test_pauses_nest_and_restore_the_collector():
  gc.enable()
  with gc_pause.paused():
    assert not gc.isenabled()
    with gc_pause.paused():
      assert not gc.isenabled()
    assert not gc.isenabled()  # the outer pause is still open
  assert gc.isenabled()
  gc.disable()  # a process that turned the collector off keeps it off
  with gc_pause.paused():
    pass
  assert not gc.isenabled()


def test_overlapping_pauses_of_two_threads_end_with_the_last():
  gc.enable()
  first_open, second_open, first_closed = threading.Event(), threading.Event(), threading.Event()
  seen = []

  def first():
    with gc_pause.paused():
      first_open.set()
      second_open.wait()
    first_closed.set()

  thread = threading.Thread(target=first)
  thread.start()
  first_open.wait()
  with gc_pause.paused():  # opened while the thread's pause is open, closed after it
    second_open.set()
    first_closed.wait()
    seen.append(gc.isenabled())
  thread.join()
  assert seen == [False] and gc.isenabled()


def test_an_exception_ends_the_pause():
  gc.enable()
  with pytest.raises(RuntimeError):
    with gc_pause.paused():
      raise RuntimeError("stop")
  assert gc.isenabled()


def test_a_training_run_leaves_the_collector_on(tmp_path):
  gc.enable()
  _train(tmp_path / "run", 2)
  assert gc.isenabled()
