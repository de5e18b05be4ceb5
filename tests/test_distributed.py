"""Multi-process training: 2 processes on localhost train exactly like 1 (each reads its slice of the same global
batch: tests/test_data.py), and `--distributed` without a cluster is one line."""

import os

import numpy as np

from experiments.reliability import processes
from tests.helpers import run_cli


def test_two_processes_train_exactly_like_one(tmp_path):
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  processes.train_processes(one, 6, 1)
  processes.train_processes(two, 6, 2)
  a, b = processes.losses(one), processes.losses(two)
  assert set(a) == set(b) and any(k[1] == "train/loss" for k in a)
  for key in a:
    np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=str(key))


def test_distributed_without_a_cluster_is_one_line(tmp_path):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
  args = ["train", "configs/vae/conv_digits.py:smoke", "--workdir", str(tmp_path / "w"), "--distributed"]
  for extra in ({}, {"JAX_NUM_PROCESSES": "2"}, {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2",
                                                  "JAX_PROCESS_ID": "5"}):
    result = run_cli(*args, env={**env, **extra}, clear_env=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "JAX_COORDINATOR_ADDRESS" in lines[0], result.stderr
  assert not os.path.exists(tmp_path / "w")
