"""jgen's commands keep compiled programs in jax's persistent cache: a second run reads them back, an entry cut
short is compiled afresh and replaced with one line on stderr, and a cache that cannot be made is no cache."""

import glob
import os

from jax._src.compilation_cache import decompress_executable

from jgen.train import compile_cache
from tests.helpers import run_cli

VAE = "configs/vae/conv_digits.py:smoke"


def _env(cache_home: str) -> dict:
  """The tests' environment with jgen's default cache under `cache_home` (conftest names a cache of its own)."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_COMPILATION_CACHE_DIR", "JAX_COMPILATION_CACHE_MAX_SIZE")}
  return {**env, "JGEN_CACHE": cache_home, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def _train(workdir, env):
  result = run_cli("train", VAE, "--workdir", str(workdir), "--quiet", env=env, clear_env=True)
  assert result.returncode == 0, result.stderr
  return result.stdout.replace(str(workdir), "WORKDIR"), result.stderr  # the final eval's metrics


def test_a_second_run_reads_back_what_the_first_compiled(tmp_path):
  env = _env(str(tmp_path / "cache"))
  xla = os.path.join(tmp_path, "cache", "xla")
  first, _ = _train(tmp_path / "a", env)
  entries = sorted(glob.glob(os.path.join(xla, "*-cache")))
  assert entries, "the first run wrote no compiled program"
  read = {e: os.path.getmtime(e.replace("-cache", "-atime")) for e in entries}

  second, stderr = _train(tmp_path / "b", env)
  assert sorted(glob.glob(os.path.join(xla, "*-cache"))) == entries  # nothing compiled that was not there
  assert all(os.path.getmtime(e.replace("-cache", "-atime")) > read[e] for e in entries)  # each one read back
  assert second == first and stderr == ""

  sizes = {e: os.path.getsize(e) for e in entries}
  for entry in entries:  # as a process killed while writing them would leave them
    with open(entry, "r+b") as f:
      f.truncate(sizes[entry] // 2)
  third, stderr = _train(tmp_path / "c", env)
  assert third == first
  lines = stderr.strip().splitlines()
  assert all(line.startswith("jgen: the compilation cache could not read back '") and xla in line
             for line in lines), stderr
  # one line per program (python shows a repeated message once)
  assert {line.split("'")[1] for line in lines} == {os.path.basename(e).rsplit("-", 2)[0] for e in entries}
  # and each damaged entry was replaced by the fresh compile, whole again
  assert sorted(glob.glob(os.path.join(xla, "*-cache"))) == entries
  for entry in entries:
    with open(entry, "rb") as f:
      decompress_executable(f.read())  # as jax reads it back; raises on a cut-short entry


def test_the_environment_names_the_cache(monkeypatch, tmp_path):
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
  assert compile_cache.use_persistent_cache() == str(tmp_path / "mine")
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "")
  assert compile_cache.use_persistent_cache() is None


def test_no_cache_where_its_directory_cannot_be_made(monkeypatch, tmp_path):
  (tmp_path / "a_file").write_text("")
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
  monkeypatch.setenv("JGEN_CACHE", str(tmp_path / "a_file"))
  assert compile_cache.use_persistent_cache() is None
