"""The reliability promises, one bug each: a run killed in start-up resumes; a damaged checkpoint falls back in
one line, is set aside and rewritten; silently changed arrays fail their checksum; a NaN never reaches disk and
the run resumes with changed optimizer settings; a damaged data item falls back; a full disk is one line."""

import errno
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jgen import cli
from jgen import config as config_lib
from jgen import registry
from jgen.errors import UserError
from jgen.families.vae import VAE
from jgen.train import checkpoint, checksum, loop
from jgen.train import workdir as workdir_lib
from tests.helpers import config_path, logged

VAE_DIGITS = config_path("configs/vae/conv_digits.py") + ":smoke"
STEPS = ["train.ckpt_every=2", "train.log_every=1", "train.keep=5", "train.eval_every=0"]


def _config(steps, *extra, model=None):
  config = config_lib.load(VAE_DIGITS, [f"train.steps={steps}", *STEPS, *extra])
  if model:
    with config.unlocked():
      config.model.name = model
  return config


def _train(workdir, steps, *extra, model=None):
  return loop.train(_config(steps, *extra, model=model), workdir, show_progress=False)


def _saved_checksums(workdir, step):
  with open(os.path.join(workdir, "checkpoints", str(step), "data", "metadata")) as f:
    return json.load(f)["checksums"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted 6-step run: its losses and its final checkpoint's checksums."""
  workdir = str(tmp_path_factory.mktemp("reference") / "run")
  _train(workdir, 6)
  return logged(workdir, "train/loss"), _saved_checksums(workdir, 6)


def _assert_same_as(reference, workdir):
  losses, sums = reference
  assert logged(workdir, "train/loss") == losses
  assert _saved_checksums(workdir, 6) == sums


def test_checksum_sees_every_single_bit_and_not_the_sharding():
  rng = np.random.default_rng(0)
  state = {"f32": rng.normal(size=(8, 5)).astype(np.float32), "bf16": jnp.asarray(rng.normal(size=(16,)), jnp.bfloat16),
           "i32": rng.integers(-9, 9, (8, 3)).astype(np.int32), "u8": rng.integers(0, 255, (8, 2)).astype(np.uint8),
           "flag": np.array([True, False]), "key": jax.random.key(3)}
  state = jax.tree.map(jnp.asarray, state)
  base = checksum.of_state(state)
  for name in ("f32", "bf16", "i32", "u8"):
    words = np.asarray(state[name]).copy().view(np.uint8).reshape(-1)
    for _ in range(5):
      flipped = words.copy()
      i, bit = rng.integers(words.size), rng.integers(8)
      flipped[i] ^= np.uint8(1 << bit)
      changed = {**state, name: jnp.asarray(flipped.view(np.asarray(state[name]).dtype).reshape(state[name].shape))}
      assert checksum.mismatch(changed, base) is not None, (name, i, bit)
  assert checksum.mismatch({**state, "flag": ~state["flag"]}, base) is not None
  assert checksum.mismatch({**state, "key": jax.random.key(4)}, base) is not None
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  sharded = {**state, "f32": jax.device_put(state["f32"], jax.NamedSharding(mesh, jax.P("data")))}
  assert checksum.of_state(sharded) == base


def _documented_sums(words: np.ndarray) -> str:
  """The module's two weighted sums of an array's uint words, in numpy, as the hex digits it saves."""
  w = words.reshape(-1).astype(np.uint64)  # products wrap mod 2^64, which keeps them right mod 2^32
  pos = np.arange(w.size, dtype=np.uint64)
  odd = 2 * pos + 1
  first = np.sum(w * odd * np.uint64(checksum._K1)) % 2**32
  second = np.sum((w ^ (w >> np.uint64(15))) * (odd * np.uint64(checksum._K2) + pos * 2)) % 2**32
  return f"{int(first):08x}{int(second):08x}"


def test_checksum_is_the_documented_weighted_sums():
  """The sums saved with every checkpoint, recomputed in numpy from the module's formula: a change of how they
  are computed must not change their values, or every checkpoint written before would read as damaged."""
  rng = np.random.default_rng(1)
  state = {"f32": rng.normal(size=(3, 1000)).astype(np.float32),
           "bf16": jnp.asarray(rng.normal(size=(7,)), jnp.bfloat16),
           "u8": rng.integers(0, 255, (9,)).astype(np.uint8), "flag": np.array([True, False, True]),
           "key": jax.random.key(5), "scalar": np.int32(-7)}
  words = {"f32": state["f32"].view(np.uint32), "bf16": np.asarray(state["bf16"]).view(np.uint16),
           "u8": state["u8"], "flag": state["flag"], "key": np.asarray(jax.random.key_data(state["key"])),
           "scalar": np.asarray(state["scalar"]).view(np.uint32)}
  expected = {f"['{name}']": _documented_sums(w) for name, w in words.items()}
  assert checksum.of_state(jax.tree.map(jnp.asarray, state)) == expected


def test_scan_finds_any_nan_or_infinity_in_any_float_array():
  rng = np.random.default_rng(2)
  state = {"f32": rng.normal(size=(4, 33)).astype(np.float32),
           "bf16": jnp.asarray(rng.normal(size=(9,)), jnp.bfloat16), "f16": rng.normal(size=(2, 3)).astype(np.float16),
           "scalar": np.float32(1.5),
           "i32": np.full((5,), -1, np.int32), "flag": np.array([True]), "key": jax.random.key(0)}
  state = jax.tree.map(jnp.asarray, state)
  clean = checksum.scan(state)
  assert clean.finite and clean.sums == checksum.of_state(state)
  for name in ("f32", "bf16", "f16", "scalar"):
    for bad in (np.nan, np.inf, -np.inf):
      x = np.asarray(state[name].astype(jnp.float32)).copy().reshape(-1)
      x[rng.integers(x.size)] = bad
      changed = {**state, name: jnp.asarray(x.reshape(state[name].shape), state[name].dtype)}
      assert not checksum.scan(changed).finite, (name, bad)
  with jax.enable_x64(True):  # two words an element: their sums, and their flags apart
    wide = np.arange(6, dtype=np.float64) / 7
    assert checksum.scan({"f64": jnp.asarray(wide)}) == ({"['f64']": _documented_sums(wide.view(np.uint32))}, True)
    wide[4] = np.nan
    assert not checksum.scan({"f64": jnp.asarray(wide)}).finite


def test_a_run_killed_in_startup_resumes(tmp_path, monkeypatch, reference):
  """A kill after the run's identity is written, before its first checkpoint, leaves a resumable workdir."""
  workdir = str(tmp_path / "run")

  def killed(*args, **kwargs):
    raise KeyboardInterrupt
  with monkeypatch.context() as m:
    m.setattr(checkpoint, "manager", killed)
    with pytest.raises(KeyboardInterrupt):
      _train(workdir, 6)
  assert os.path.exists(os.path.join(workdir, "config.json"))
  _train(workdir, 6)
  _assert_same_as(reference, workdir)


def test_a_damaged_checkpoint_is_set_aside_and_rewritten(tmp_path, capsys, reference):
  workdir = str(tmp_path / "run")
  _train(workdir, 6)
  open(os.path.join(workdir, "checkpoints", "6", "state", "_METADATA"), "w").close()
  capsys.readouterr()
  _train(workdir, 6)
  notes = capsys.readouterr().err.splitlines()
  assert len(notes) == 1 and "checkpoint at step 6 is damaged" in notes[0] and "using step 4" in notes[0], notes
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "6.corrupt"))
  _assert_same_as(reference, workdir)  # step 6 trained again and written again
  _train(workdir, 6)  # healed: nothing more to say
  assert capsys.readouterr().err == ""


def test_arrays_that_are_not_the_saved_ones_fail_their_checksum(tmp_path, capsys):
  """Step 4's state files under step 6's name read without a storage error; only the checksum sees it."""
  workdir = str(tmp_path / "run")
  _train(workdir, 6)
  state6 = os.path.join(workdir, "checkpoints", "6", "state")
  shutil.rmtree(state6)
  shutil.copytree(os.path.join(workdir, "checkpoints", "4", "state"), state6)
  capsys.readouterr()
  _, _, state = checkpoint.restore_for_inference(workdir)
  assert int(state.step) == 4
  note = capsys.readouterr().err
  assert "step 6 is damaged" in note and "checksum mismatch" in note and "left in place" in note


class _LrSensitiveVAE(VAE):
  """A VAE whose parameters become NaN from step 5 on when its lr is above 0.01 (metrics stay finite)."""

  def train_step(self, state, batch, rng):
    new, metrics = super().train_step(state, batch, rng)
    poison = jnp.where((new.step >= 5) & (self.config.optim.lr > 0.01), jnp.nan, 0.0)
    return new.replace(params=jax.tree.map(lambda p: p + poison, new.params)), metrics


registry.register("test.lr_sensitive_vae", family="VAE")(_LrSensitiveVAE)


@pytest.mark.parametrize("log_every", [0, 1])
def test_nan_is_never_saved_and_the_run_resumes_with_a_lower_lr(tmp_path, capsys, log_every):
  workdir = str(tmp_path / "run")
  bad = ["optim.lr=0.1", f"train.log_every={log_every}"]
  with pytest.raises(loop.TrainingDiverged, match=r"the last good checkpoint \(step 4\) is kept"):
    _train(workdir, 8, *bad, model="test.lr_sensitive_vae")
  assert sorted(checkpoint.manager(workdir).all_steps()) == [2, 4]
  assert not [d for d in os.listdir(os.path.join(workdir, "checkpoints")) if "tmp" in d]  # no save left in flight
  capsys.readouterr()
  _train(workdir, 8, "optim.lr=0.001", "optim.grad_clip=1.0", f"train.log_every={log_every}",
         model="test.lr_sensitive_vae")
  note = capsys.readouterr().err
  assert "resuming from step 4 with changed optimizer settings" in note and "optim.lr: 0.1 -> 0.001" in note
  _, _, state = checkpoint.restore_for_inference(workdir)
  assert int(state.step) == 8 and all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.params))


def test_a_damaged_data_item_falls_back_for_sampling_and_training(tmp_path, capsys, reference):
  workdir = str(tmp_path / "run")
  _train(workdir, 6)
  meta = os.path.join(workdir, "checkpoints", "6", "data", "metadata")
  with open(meta) as f:
    data = json.load(f)
  with open(meta, "w") as f:
    json.dump({**data, "iterator": {"not": "an iterator state"}}, f)
  capsys.readouterr()
  _train(workdir, 6)
  assert "checkpoint at step 6 is damaged" in capsys.readouterr().err
  _assert_same_as(reference, workdir)
  with open(os.path.join(workdir, "checkpoints", "6", "data", "metadata"), "w") as f:
    f.write("[1, 2")
  _, _, state = checkpoint.restore_for_inference(workdir)
  assert int(state.step) == 4


def test_a_full_disk_is_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys, reference):
  workdir = str(tmp_path / "run")
  save = ocp.CheckpointManager.save

  def full_disk_from_step_5(self, step, *args, **kwargs):
    if step >= 5:
      raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, step, *args, **kwargs)
  with monkeypatch.context() as m:
    m.setattr(ocp.CheckpointManager, "save", full_disk_from_step_5)
    with pytest.raises(UserError, match=r"No space left on device\); the last good checkpoint \(step 4\) is kept"):
      _train(workdir, 6)
  assert sorted(checkpoint.manager(workdir).all_steps()) == [2, 4]
  _train(workdir, 6)
  _assert_same_as(reference, workdir)


def test_a_full_disk_counts_the_save_still_in_flight():
  # The error can come while the previous checkpoint is still being written in the background: the line must
  # name it once it is whole, not the one before it.
  class InFlight:
    steps = [2]

    def wait_until_finished(self):
      self.steps = [2, 4]

    def reload(self):
      pass

    def latest_step(self):
      return self.steps[-1]

  with pytest.raises(UserError, match=r"the last good checkpoint \(step 4\) is kept"):
    workdir_lib.raise_if_disk_error(OSError(errno.ENOSPC, "No space left on device"), "run", InFlight())


def test_cli_reruns_and_workdirs_in_odd_states(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  args = ["train", VAE_DIGITS, "--workdir", workdir, "--quiet", "--set", "train.steps=2", "--set", "train.eval_every=2"]
  assert cli.main(args) == 0
  first = capsys.readouterr().out
  assert cli.main(args) == 0  # nothing left to train: the same numbers again
  assert capsys.readouterr().out == first and "eval/nll=" in first

  afile = tmp_path / "afile"
  afile.write_text("x")
  assert cli.main(["train", VAE_DIGITS, "--workdir", str(afile / "run")]) == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 1 and "is a file" in err[0]

  empty = tmp_path / "untrained"
  empty.mkdir()
  shutil.copy(os.path.join(workdir, "config.json"), empty / "config.json")
  assert cli.main(["sample", "--workdir", str(empty), "--out", str(tmp_path / "s.png")]) == 2
  assert "no checkpoint yet" in capsys.readouterr().err and os.listdir(empty) == ["config.json"]

  (empty / "config.json").write_text('{"model": ')
  assert cli.main(["sample", "--workdir", str(empty), "--out", str(tmp_path / "s.png")]) == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 1 and "unreadable config.json" in err[0]


def test_a_family_without_an_optimizer_resumes(tmp_path):
  """EM-fitted families have no optim block: resuming must not look for one."""
  workdir = str(tmp_path / "run")
  spec = config_path("configs/classical/robust_ppca_toy.py") + ":smoke"
  loop.train(config_lib.load(spec, ["train.steps=2", "train.ckpt_every=2"]), workdir, show_progress=False)
  loop.train(config_lib.load(spec, ["train.steps=4", "train.ckpt_every=2"]), workdir, show_progress=False)
  assert int(checkpoint.restore_for_inference(workdir)[2].step) == 4
