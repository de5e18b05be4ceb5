"""PNG figures for runs: sample grids, reconstructions, latent maps, 2-D points, interpolations, image
tables, point paths, curves.

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


def save_latent_map(z, labels, path: str, class_names=None, title: str | None = None,
                    axis_labels=("z[0]", "z[1]")) -> str:
  """2-D latent codes [N,2] scattered and coloured by integer label, with a legend (`axis_labels` name the
  axes of codes already projected, e.g. on principal components)."""
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
  ax.set_xlabel(axis_labels[0])
  ax.set_ylabel(axis_labels[1])
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


def save_image_table(cells, path: str, col_labels=None, row_labels=None, title: str | None = None) -> str:
  """Cells [R,C,H,W,ch] as a table of images, columns and rows optionally labelled; NaN cells stay blank."""
  cells = np.asarray(cells, np.float32)
  if cells.ndim != 5:
    raise ValueError(f"expected cells [R,C,H,W,ch], got shape {cells.shape}")
  r, c, h, w = cells.shape[:4]
  canvas = tile(np.nan_to_num(cells, nan=1.0).reshape((r * c,) + cells.shape[2:]), ncol=c)
  fig = _show_canvas(canvas, None, inches_per_pixel=0.04)
  ax = fig.axes[0]
  for i, label in enumerate(col_labels or ()):
    ax.text(1 + i * (w + 1) + w / 2, -1, str(label), ha="center", va="bottom", fontsize=7)
  for i, label in enumerate(row_labels or ()):
    ax.text(-1, 1 + i * (h + 1) + h / 2, str(label), ha="right", va="center", fontsize=7)
  if title:
    ax.set_title(title, fontsize=9, pad=14 if col_labels else 4)
  return _finish(fig, path)


def save_point_paths(paths, path: str, reference=None, title: str | None = None, labels=None) -> str:
  """Paths [S,T,D] of points (the first two coordinates drawn), each a line from a circle to a square,
  over the data `reference` [M,D] when given; `labels` name the paths in a legend."""
  paths = np.asarray(paths, np.float32)
  if paths.ndim != 3 or paths.shape[-1] < 2:
    raise ValueError(f"expected paths [S,T,D] with D >= 2, got shape {paths.shape}")
  fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=100)
  if reference is not None:
    reference = np.asarray(reference, np.float32)
    ax.scatter(reference[:, 0], reference[:, 1], s=3, alpha=0.3, color="tab:gray")
  cmap = plt.get_cmap("tab10")
  for i, p in enumerate(paths):
    color = cmap(i % cmap.N)
    ax.plot(p[:, 0], p[:, 1], ".-", lw=1.0, ms=3, color=color, label=None if labels is None else labels[i])
    ax.plot(p[0, 0], p[0, 1], "o", ms=6, color=color, mfc="none")
    ax.plot(p[-1, 0], p[-1, 1], "s", ms=6, color=color, mfc="none")
  ax.set_aspect("equal", adjustable="datalim")
  if labels is not None:
    ax.legend(fontsize=7, loc="upper right")
  ax.set_title(title or "paths (circle: start, square: end)", fontsize=10)
  return _finish(fig, path)


def save_decoded_grid(decoded, path: str, shape, reference=None, title: str | None = None) -> str:
  """Decoded latents laid out as `shape` (rows, cols): images [R*C,H,W,ch] as a grid; points [R*C,D] over
  the data `reference` as a mesh (the rows and columns of the grid as paths) or, for one row, as points."""
  decoded = np.asarray(decoded, np.float32)
  rows, cols = shape
  if reference is None:
    return save_image_grid(np.clip(decoded, 0.0, 1.0), path, ncol=cols if rows > 1 else min(cols, 10), title=title)
  if rows == 1:
    return save_points(decoded, path, reference=reference, title=title)
  mesh = decoded.reshape(rows, cols, -1)
  return save_point_paths(np.concatenate([mesh, mesh.transpose(1, 0, 2)]), path, reference=reference, title=title)


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
