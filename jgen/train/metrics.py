"""Metric writers: `metrics.jsonl` (one JSON object per logged step) and TensorBoard events."""

import json
import os

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
    from tensorboardX import SummaryWriter
    self.tb = SummaryWriter(os.path.join(workdir, "tb"))

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
