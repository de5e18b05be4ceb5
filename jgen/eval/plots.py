"""PNG figures for runs: sample grids, reconstructions, latent maps, 2-D points, interpolations, curves.

Every function takes plain arrays (numpy or jax), writes one PNG and returns its
path. Matplotlib runs on the Agg backend so plots work on machines without a display.
"""

import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _as_images(images) -> np.ndarray:
  """[N,H,W,C] floats -> clipped numpy [N,H,W,C]; a single [H,W,C] becomes a batch of one."""
  images = np.asarray(images, dtype=np.float32)
  if images.ndim == 3:
    images = images[None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"expected images [N,H,W,C] with C in (1, 3), got shape {images.shape}")
  return np.clip(np.nan_to_num(images), 0.0, 1.0)


def tile(images, ncol: int | None = None, pad: int = 1) -> np.ndarray:
  """Tiles [N,H,W,C] images into one [rows*(H+pad)+pad, ncol*(W+pad)+pad, C] array on a white background."""
  images = _as_images(images)
  n, h, w, c = images.shape
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  canvas = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.float32)
  for i, img in enumerate(images):
    r, col = divmod(i, ncol)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    canvas[y:y + h, x:x + w] = img
  return canvas


def _finish(fig, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=fig.dpi, bbox_inches="tight")
  plt.close(fig)
  return path


def _show_canvas(canvas: np.ndarray, title: str | None, inches_per_pixel: float = 0.03):
  """A figure that shows each image pixel as a 3x3 block at 100 dpi, so small images stay readable."""
  h, w = canvas.shape[:2]
  fig = plt.figure(figsize=(max(2.0, w * inches_per_pixel), max(2.0, h * inches_per_pixel)), dpi=100)
  ax = fig.add_axes([0, 0, 1, 1])
  if canvas.shape[-1] == 1:
    ax.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
  else:
    ax.imshow(canvas, interpolation="nearest")
  ax.set_axis_off()
  if title:
    ax.set_title(title, fontsize=10)
  return fig


def save_image_grid(images, path: str, ncol: int | None = None, title: str | None = None) -> str:
  """Images float [N,H,W,C] in [0,1] (C = 1 or 3) -> one PNG grid (square by default)."""
  return _finish(_show_canvas(tile(images, ncol), title), path)


def save_reconstructions(x, x_hat, path: str, ncol: int | None = None, title: str | None = None) -> str:
  """Originals above their reconstructions: row pairs (original row, then reconstruction row)."""
  x, x_hat = _as_images(x), _as_images(x_hat)
  if x.shape != x_hat.shape:
    raise ValueError(f"originals {x.shape} and reconstructions {x_hat.shape} differ in shape")
  n = x.shape[0]
  ncol = ncol or min(n, 10)
  rows = []
  for start in range(0, n, ncol):
    chunk_x, chunk_r = x[start:start + ncol], x_hat[start:start + ncol]
    missing = ncol - chunk_x.shape[0]
    if missing:  # pad the last pair of rows with white tiles
      blank = np.ones((missing,) + x.shape[1:], np.float32)
      chunk_x, chunk_r = np.concatenate([chunk_x, blank]), np.concatenate([chunk_r, blank])
    rows += [chunk_x, chunk_r]
  return _finish(_show_canvas(tile(np.concatenate(rows), ncol), title or "top: data, bottom: reconstruction"), path)


def save_latent_map(z, labels, path: str, class_names=None, title: str | None = None) -> str:
  """2-D latent codes [N,2] scattered and coloured by integer label, with a legend."""
  z = np.asarray(z, np.float32)
  labels = np.asarray(labels).astype(int).reshape(-1)
  if z.ndim != 2 or z.shape[1] < 2:
    raise ValueError(f"expected latent codes [N,2], got shape {z.shape}")
  if z.shape[1] > 2:  # project wider codes on their first two principal axes
    centred = z - z.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    z = centred @ vt[:2].T
  classes = np.unique(labels)
  cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
  fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=100)
  for i, c in enumerate(classes):
    sel = labels == c
    name = class_names[c] if class_names is not None and c < len(class_names) else str(c)
    ax.scatter(z[sel, 0], z[sel, 1], s=4, alpha=0.6, color=cmap(i % cmap.N), label=name)
  ax.set_xlabel("z[0]")
  ax.set_ylabel("z[1]")
  ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
  ax.set_title(title or "latent codes by class")
  return _finish(fig, path)


def save_points(points, path: str, reference=None, title: str | None = None) -> str:
  """2-D samples [N,2], drawn over the data `reference` [M,2] when given."""
  points = np.asarray(points, np.float32)
  fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=100)
  if reference is not None:
    reference = np.asarray(reference, np.float32)
    ax.scatter(reference[:, 0], reference[:, 1], s=3, alpha=0.35, color="tab:gray", label="data")
  ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.6, color="tab:blue", label="samples")
  ax.set_aspect("equal", adjustable="datalim")
  ax.legend(markerscale=4, fontsize=8, loc="upper right")
  ax.set_title(title or "samples" + (" vs data" if reference is not None else ""))
  return _finish(fig, path)


def save_interpolation_strips(strips, path: str, title: str | None = None) -> str:
  """Strips [S,T,H,W,C]: each row walks T steps from one encoded image to another."""
  strips = np.asarray(strips, np.float32)
  if strips.ndim == 4:
    strips = strips[None]
  if strips.ndim != 5:
    raise ValueError(f"expected strips [S,T,H,W,C], got shape {strips.shape}")
  s, t = strips.shape[:2]
  canvas = tile(strips.reshape((s * t,) + strips.shape[2:]), ncol=t)
  return _finish(_show_canvas(canvas, title or "interpolations (left to right)"), path)


def read_metrics(metrics_jsonl_path: str) -> list[dict]:
  """The records of a metrics.jsonl file; blank and truncated lines are skipped."""
  records = []
  with open(metrics_jsonl_path) as f:
    for line in f:
      line = line.strip()
      if not line:
        continue
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:  # a run killed mid-write leaves half a line
        continue
  return records


def save_training_curves(metrics_jsonl_path: str, path: str, keys=None, title: str | None = None) -> str:
  """Curves against "step" from a metrics.jsonl of one JSON object per line.

  Keys that differ only in their prefix ("train/loss", "eval/loss") share one panel.
  """
  records = read_metrics(metrics_jsonl_path)
  if keys is None:
    keys = sorted({k for r in records for k, v in r.items()
                   if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)})
  if not keys:
    raise ValueError(f"no numeric metrics found in {metrics_jsonl_path}")
  panels: dict[str, list[str]] = {}
  for key in keys:
    panels.setdefault(key.split("/", 1)[-1], []).append(key)
  ncol = min(3, len(panels))
  nrow = int(math.ceil(len(panels) / ncol))
  fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), dpi=100, squeeze=False)
  for ax, (name, members) in zip(axes.flat, panels.items()):
    for key in members:
      pts = [(r["step"], r[key]) for r in records if key in r and "step" in r and r[key] is not None]
      if pts:
        steps, values = zip(*pts)
        ax.plot(steps, values, marker="." if len(pts) < 30 else None, lw=1.2, label=key)
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if len(members) > 1:
      ax.legend(fontsize=8)
  for ax in list(axes.flat)[len(panels):]:
    ax.set_axis_off()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return _finish(fig, path)
