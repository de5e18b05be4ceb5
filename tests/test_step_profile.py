"""benchmarks/step_profile.py attributes a train step's compiled ops to the forward and backward jax operations."""

import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
import step_profile  # noqa: E402


def test_op_origins_name_the_jax_operations():
  hlo = jax.jit(lambda x: jnp.sin(x) @ x.T).lower(jnp.ones((8, 8))).compile().as_text()
  origins = step_profile.op_origins(hlo)
  assert any("sin" in op for op in origins.values()), origins
  assert any("dot_general" in op for op in origins.values()), origins


def test_profile_of_a_smoke_step_has_forward_and_backward_ops():
  result = step_profile.profile("configs/vae/conv_digits.py:smoke", steps=2)
  rows = result["rows"]
  assert result["step_ms"] > 0 and rows
  assert all(ms >= 0 for ms in rows.values())
  origins = [origin for _, origin in rows]
  assert any(o.startswith("transpose(jvp") for o in origins), origins  # the backward pass
  assert any(o.startswith("jvp(") for o in origins), origins  # the forward pass
