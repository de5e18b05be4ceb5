"""The metric writer: rows in metrics.jsonl and TensorBoard events, a resume drops the interrupted run's later rows,
and logging never imports PyTorch (tensorboardX would, where it is installed)."""

import json
import os
import subprocess
import sys
import textwrap

from jgen.train.metrics import MetricWriter
from tests.helpers import REPO


def test_rows_and_events_are_written_and_a_resume_drops_later_rows(tmp_path):
  workdir = str(tmp_path)
  writer = MetricWriter(workdir)
  for step in (1, 2, 3):
    writer.write(step, {"train/loss": 1.0 / step})
  writer.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 4, "train/lo')  # torn by a kill in mid-write
  writer = MetricWriter(workdir, resume_step=2)
  writer.write(3, {"train/loss": 0.25})
  writer.close()
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert rows == [{"step": 1, "train/loss": 1.0}, {"step": 2, "train/loss": 0.5}, {"step": 3, "train/loss": 0.25}]
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))


def test_logging_does_not_import_torch(tmp_path):
  # A stand-in `torch` package first on the path: importing it leaves a mark, so the test needs no PyTorch.
  fake = tmp_path / "site" / "torch"
  fake.mkdir(parents=True)
  mark = tmp_path / "imported"
  (fake / "__init__.py").write_text(f"open({str(mark)!r}, 'w').close()\nTensor = object\n")
  script = textwrap.dedent(f"""
      import sys
      from jgen.train.metrics import MetricWriter
      w = MetricWriter({str(tmp_path / "run")!r})
      w.write(1, {{"train/loss": 0.5}})
      w.close()
      assert "torch" not in sys.modules
      import torch  # still importable afterwards
      """)
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), REPO])}
  result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=REPO)
  assert result.returncode == 0, result.stderr[-2000:]
  assert mark.exists(), "the stand-in torch must be importable after the writer is made"
  os.remove(mark)
  # The same script with the writer's import guard bypassed would have imported it: the check can fail.
  result = subprocess.run([sys.executable, "-c", "import tensorboardX.writer"], env=env, capture_output=True,
                          text=True, cwd=REPO)
  assert result.returncode == 0, result.stderr[-2000:]
  assert mark.exists(), "tensorboardX imports torch where it is installed"
