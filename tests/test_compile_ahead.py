"""The train step compiled in a background thread while the loop restores or initialises (jgen/train/compile_ahead.py):
the loop runs that executable and never compiles the step again, the results are those of the jitted step, and
errors reach the caller."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import config as config_lib
from jgen.data import pipeline, sources
from jgen.errors import UserError
from jgen.train import compile_ahead, loop, sharding
from tests.helpers import config_path, logged

VAE = "configs/vae/conv_digits.py:smoke"


def test_result_equals_jit_and_donation_is_kept():
  jitted = jax.jit(lambda x, y: (x * 2.0 + y, jnp.sum(y)), donate_argnums=(0,))
  x, y = jnp.arange(6.0).reshape(2, 3), jnp.ones((2, 3))
  ahead = compile_ahead.CompiledAhead(jitted, jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), y)
  expected = jax.jit(lambda x, y: (x * 2.0 + y, jnp.sum(y)))(x, y)
  got = ahead(x, y)
  for a, b in zip(got, expected):
    np.testing.assert_array_equal(a, b)
  assert x.is_deleted()  # donated, as the jitted function says
  assert jitted._cache_size() == 0  # jit itself compiled nothing


def test_a_call_of_another_shape_is_refused_before_running():
  jitted = jax.jit(lambda x: x + 1.0)
  ahead = compile_ahead.CompiledAhead(jitted, jax.ShapeDtypeStruct((2, 3), jnp.float32))
  with pytest.raises(TypeError, match="differ from the types"):
    ahead(jnp.zeros((4, 3)))


def test_an_error_while_tracing_is_raised_at_the_first_call_in_the_callers_thread():
  def step(x):
    raise UserError("model.width=0: must be positive")

  ahead = compile_ahead.CompiledAhead(jax.jit(step), jax.ShapeDtypeStruct((2,), jnp.float32))
  with pytest.raises(UserError, match="must be positive"):
    ahead(jnp.zeros(2))
  with pytest.raises(UserError):  # and again at every later call
    ahead.result()


def _train(workdir, steps, captured=None, monkeypatch=None, extra=()):
  if monkeypatch is not None:  # keep the run's Runner to look at its step afterwards
    setup = loop.Runner.setup
    monkeypatch.setattr(loop.Runner, "setup", lambda self, batch: (captured.append(self), setup(self, batch))[1])
  overrides = [f"train.steps={steps}", "train.log_every=2", "train.eval_every=0", "train.ckpt_every=4",
               "train.sample_num=0", "train.evals=''", *extra]
  loop.train(config_lib.load(config_path(VAE), overrides), str(workdir), show_progress=False)


def test_the_loop_runs_the_step_it_compiled_ahead_and_jit_compiles_none(tmp_path, monkeypatch):
  runners = []
  _train(tmp_path / "run", 6, runners, monkeypatch)
  (runner,) = runners
  assert isinstance(runner.train_step, compile_ahead.CompiledAhead)
  assert runner.step._cache_size() == 0  # every step ran the executable compiled ahead: no second compile
  assert [s for s, _ in logged(tmp_path / "run", "train/loss")] == [2, 4, 6]


def test_the_same_losses_as_the_jitted_step(tmp_path):
  # The loop's logged losses against the jitted step run by hand from the same init and batches.
  _train(tmp_path / "ahead", 4)
  config = config_lib.load(config_path(VAE), ["train.steps=4"])
  runner = loop.Runner(config)
  source = sources.load(config.data.name, "train", **runner.data_kwargs)
  train_it = pipeline.train_iterator(source, batch_size=runner.batch_size, seed=config.train.seed)
  batches = [next(train_it) for _ in range(4)]
  runner.setup(batches[0])
  state = runner.init(runner.init_key, sharding.put_batch(batches[0], runner.batch_sharding))
  flag = jax.device_put(jnp.int32(0), runner.replicated)
  losses = []
  for batch in batches:
    state, metrics, flag = runner.step(state, runner.put_train_batch(batch), flag)  # jax.jit's own compile
    losses.append(float(metrics["loss"]))
  np.testing.assert_array_equal([v for _, v in logged(tmp_path / "ahead", "train/loss")], [losses[1], losses[3]])


def test_a_finished_run_compiles_nothing_ahead(tmp_path, monkeypatch):
  _train(tmp_path / "run", 4)
  runners = []
  _train(tmp_path / "run", 4, runners, monkeypatch)  # nothing left to train
  assert runners[0].train_step is runners[0].step


def test_several_steps_a_call_leave_the_single_step_to_jit(tmp_path, monkeypatch):
  # The first call may be the scanned one; compiling the single step ahead would only compete with it.
  runners = []
  _train(tmp_path / "run", 4, runners, monkeypatch, extra=["train.steps_per_call=2"])
  assert runners[0].train_step is runners[0].step
