"""`jgen` starts itself again under tcmalloc where it is installed (jgen/host_allocator.py): when it does, when
it leaves the process alone, and that XLA:CPU's freed temporaries then come back without page faults."""

import os
import subprocess
import sys
import textwrap

import pytest

from jgen import host_allocator
from jgen.errors import UserError

LIBRARY = "libtcmalloc_minimal.so.4"


def _found():
  return LIBRARY


def test_preloads_tcmalloc_where_nothing_else_is_chosen():
  env = host_allocator.preload_environment({"PATH": "/bin"}, find=_found)
  assert env["LD_PRELOAD"] == LIBRARY and env["PATH"] == "/bin"
  assert int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) >= 2**40  # no stderr line per big buffer


def test_leaves_the_process_alone():
  # The user's preload wins, JGEN_ALLOCATOR=system opts out, and without the library nothing changes.
  assert host_allocator.preload_environment({"LD_PRELOAD": "/opt/libjemalloc.so"}, find=_found) is None
  assert host_allocator.preload_environment({"JGEN_ALLOCATOR": "system"}, find=_found) is None
  assert host_allocator.preload_environment({}, find=lambda: None) is None
  # A user's own tcmalloc setting is kept.
  env = host_allocator.preload_environment({"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": "1000"}, find=_found)
  assert env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] == "1000"


def test_a_bad_or_unmet_choice_is_one_clear_error():
  with pytest.raises(UserError, match="JGEN_ALLOCATOR='tcmaloc': use tcmalloc or system"):
    host_allocator.preload_environment({"JGEN_ALLOCATOR": "tcmaloc"}, find=_found)
  with pytest.raises(UserError, match="tcmalloc is not installed here"):
    host_allocator.preload_environment({"JGEN_ALLOCATOR": "tcmalloc"}, find=lambda: None)
  assert host_allocator.preload_environment({"JGEN_ALLOCATOR": "tcmalloc"}, find=_found)["LD_PRELOAD"] == LIBRARY


def test_the_command_reports_a_bad_choice_in_one_line():
  env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
  out = subprocess.run([sys.executable, "-m", "jgen", "--help"], env={**env, "JGEN_ALLOCATOR": "fast"},
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 2 and out.stdout == ""
  assert out.stderr.strip().splitlines() == [
      "jgen: error: JGEN_ALLOCATOR='fast': use tcmalloc or system, or leave it unset (tcmalloc where installed)"]


needs_tcmalloc = pytest.mark.skipif(host_allocator.find_tcmalloc() is None or sys.platform != "linux",
                                    reason="tcmalloc is not installed (make install installs it where it can)")

# Runs a jitted function whose temporaries (a sorted copy, 64 MiB) are allocated and freed at every call, and
# prints: pid, tcmalloc loaded, minor page faults per call, the pages of one 64 MiB buffer.
_PROBE = textwrap.dedent("""
    import os, resource
    from jgen import host_allocator
    host_allocator.use_tcmalloc()
    import jax, jax.numpy as jnp
    f = jax.jit(lambda x: jnp.sum(jnp.sort(x, axis=1)[:, ::97]))
    x = jnp.ones((2048, 8192), jnp.float32)
    f(x).block_until_ready()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
      f(x).block_until_ready()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
    print(os.getpid(), host_allocator.loaded(), faults, 64 * 2**20 // 4096)
""")


def _probe(**env):
  full_env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "JGEN_ALLOCATOR")}
  proc = subprocess.Popen([sys.executable, "-c", _PROBE], env={**full_env, **env}, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  pid, loaded, faults, pages = out.split()
  return proc.pid, int(pid), loaded == "True", float(faults), int(pages)


@needs_tcmalloc
def test_restarts_under_tcmalloc_and_reuses_freed_pages():
  spawned, pid, loaded, faults, pages = _probe()
  assert loaded and pid == spawned  # the same process (execve), now with tcmalloc
  # glibc maps a fresh 64 MiB at every call and faults in every page of it; tcmalloc hands the freed pages back.
  _, _, loaded_system, faults_system, _ = _probe(JGEN_ALLOCATOR="system")
  assert not loaded_system
  assert faults_system > 0.9 * pages
  assert faults < 0.5 * pages


@needs_tcmalloc
def test_the_jgen_command_runs_under_tcmalloc():
  # `python -m jgen --help`, reporting at exit whether it ran under tcmalloc (the code runs again after execve).
  code = ("import atexit, runpy, sys; from jgen import host_allocator; "
          "atexit.register(lambda: print('tcmalloc loaded:', host_allocator.loaded())); "
          "sys.argv = ['jgen', '--help']; runpy.run_module('jgen', run_name='__main__')")
  env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "JGEN_ALLOCATOR")}
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert "usage" in out.stdout and out.stderr == ""
  assert out.stdout.strip().endswith("tcmalloc loaded: True")
