"""Metric writers: `metrics.jsonl` (one JSON object per logged step) and TensorBoard events."""

import json
import os
import sys

import numpy as np


class MetricWriter:
  """Writes scalars to `WORKDIR/metrics.jsonl` and TensorBoard events under `WORKDIR/tb`.

  Only process 0 writes. On resume from step `resume_step`, lines logged after
  that step by the interrupted run are dropped, so the file reads as if the run
  had never stopped.
  """

  def __init__(self, workdir: str, resume_step: int = 0, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    if not enabled:
      return
    _truncate_after(self.path, resume_step)
    self.tb = _summary_writer_class()(os.path.join(workdir, "tb"))

  def write(self, step: int, scalars: dict) -> None:
    if not self.enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **clean}) + "\n")
    for k, v in clean.items():
      self.tb.add_scalar(k, v, int(step))
    self.tb.flush()

  def close(self):
    if self.enabled:
      self.tb.close()


def _summary_writer_class():
  """tensorboardX's SummaryWriter, imported without PyTorch.

  tensorboardX imports torch at module level where it is installed, only to accept torch tensors as values:
  a second of start-up and hundreds of MB for a run that logs floats. Unless the process already holds torch,
  its import is refused while tensorboardX loads (it falls back to numpy arrays, which is all jgen passes).
  """
  if "tensorboardX.writer" in sys.modules or "torch" in sys.modules:
    from tensorboardX import SummaryWriter
    return SummaryWriter
  sys.modules["torch"] = None  # `import torch` raises ImportError while this entry is there
  try:
    from tensorboardX import SummaryWriter
  finally:
    del sys.modules["torch"]
  return SummaryWriter


def _parse(line: str) -> dict | None:
  """A row, or None for a line torn by a kill in mid-write."""
  try:
    row = json.loads(line)
  except ValueError:
    return None
  return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def _truncate_after(path: str, step: int) -> None:
  """Keeps the rows up to `step` (and no torn line), replacing the file atomically so a kill keeps one or the other."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = [line if line.endswith("\n") else line + "\n" for line in f
             if (row := _parse(line)) is not None and row["step"] <= step]
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    f.writelines(lines)
  os.replace(tmp, path)


def read(path: str) -> list[dict]:
  with open(path) as f:
    return [row for line in f if (row := _parse(line)) is not None]
