"""Joining a multi-process run (`jgen train --distributed`): one process per host, or several on one machine.

On a cluster that JAX detects (Slurm, Cloud TPU, Kubernetes...) nothing needs setting. Elsewhere, every process
is given the coordinator's address, the number of processes and its own index through the environment:
JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES=N, JAX_PROCESS_ID=i. CPU processes exchange data through
gloo, which jax selects only when asked.
"""

import os

from jgen.errors import UserError, first_line

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
HOW = ("set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID for every process, "
       "or run on a cluster that JAX detects")


def _int_env(name: str) -> int | None:
  text = os.environ.get(name)
  if text is None:
    return None
  try:
    return int(text)
  except ValueError:
    raise UserError(f"{name}={text!r} is not an integer: {HOW}") from None


def initialize(timeout_s: int = 300) -> None:
  """`jax.distributed.initialize` from the environment; a missing or inconsistent setting is one line."""
  import jax

  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  address = os.environ.get("JAX_COORDINATOR_ADDRESS")
  count, index = _int_env("JAX_NUM_PROCESSES"), _int_env("JAX_PROCESS_ID")
  given = [name for name in ENV_VARS if name in os.environ]
  if given and len(given) < len(ENV_VARS):
    missing = ", ".join(name for name in ENV_VARS if name not in given)
    raise UserError(f"--distributed: {missing} not set: {HOW}")
  if count is not None and (count < 1 or not 0 <= index < count):
    raise UserError(f"--distributed: JAX_PROCESS_ID={index} is not in 0..JAX_NUM_PROCESSES-1 ({count}): {HOW}")
  try:
    jax.distributed.initialize(coordinator_address=address, num_processes=count, process_id=index,
                               initialization_timeout=timeout_s)
  except (ValueError, RuntimeError) as e:
    first = first_line(e, 160)
    raise UserError(f"--distributed: cannot join a multi-process run ({first}): {HOW}") from None
