"""Progress report: a tqdm bar (step, loss, steps/s) on a terminal, plain log lines otherwise."""

import sys
import time

import tqdm


class Progress:

  def __init__(self, start_step: int, total_steps: int, enabled: bool = True, stream=None):
    self.stream = stream or sys.stderr
    self.enabled = enabled
    self.total = total_steps
    self.bar = None
    if enabled and self.stream.isatty():
      self.bar = tqdm.tqdm(total=total_steps, initial=start_step, file=self.stream, dynamic_ncols=True,
                           unit="step")
    self.last_step, self.last_time = start_step, time.perf_counter()

  def update(self, step: int, scalars: dict) -> float:
    """Reports progress at `step`; returns steps/s since the previous report."""
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    if not self.enabled:
      return rate
    shown = {k.split("/")[-1]: f"{float(v):.4g}" for k, v in scalars.items() if k.startswith("train/")}
    if self.bar is not None:
      self.bar.n = step
      self.bar.set_postfix(shown, refresh=True)
    else:
      fields = " ".join(f"{k}={v}" for k, v in shown.items())
      print(f"step {step}/{self.total} {fields} steps/s={rate:.2f}", file=self.stream, flush=True)
    return rate

  def message(self, text: str) -> None:
    if not self.enabled:
      return
    if self.bar is not None:
      self.bar.write(text, file=self.stream)
    else:
      print(text, file=self.stream, flush=True)

  def close(self):
    if self.bar is not None:
      self.bar.close()
