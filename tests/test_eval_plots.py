"""Plots write readable PNGs of the right layout."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from jgen.eval import plots


def test_tile_places_each_image_in_its_cell():
  images = np.stack([np.full((4, 5, 1), v, np.float32) for v in (0.0, 0.25, 0.5, 0.75, 1.0)])
  canvas = plots.tile(images, ncol=3, pad=1)
  assert canvas.shape == (2 * 5 + 1, 3 * 6 + 1, 1)
  for i, v in enumerate((0.0, 0.25, 0.5, 0.75, 1.0)):
    r, c = divmod(i, 3)
    np.testing.assert_array_equal(canvas[1 + r * 5:1 + r * 5 + 4, 1 + c * 6:1 + c * 6 + 5], v)
  np.testing.assert_array_equal(canvas[6:10, 13:18], 1.0)  # the empty sixth cell stays white


def test_image_figures_are_pngs(tmp_path):
  rng = np.random.default_rng(0)
  gray = rng.uniform(size=(16, 28, 28, 1)).astype(np.float32)
  rgb = rng.uniform(size=(7, 8, 8, 3)).astype(np.float32)
  for path in (plots.save_image_grid(gray, str(tmp_path / "a/grid.png"), title="samples"),
               plots.save_image_grid(rgb, str(tmp_path / "rgb.png"), ncol=4),
               plots.save_reconstructions(gray[:7], 1 - gray[:7], str(tmp_path / "rec.png"), ncol=4),
               plots.save_interpolation_strips(gray[:12].reshape(2, 6, 28, 28, 1), str(tmp_path / "interp.png"))):
    img = mpimg.imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) >= 100
  with pytest.raises(ValueError):
    plots.save_reconstructions(gray[:3], gray[:4], str(tmp_path / "bad.png"))


def test_scatter_and_curves(tmp_path):
  rng = np.random.default_rng(1)
  z = rng.normal(size=(300, 2))
  labels = rng.integers(0, 10, 300)
  plots.save_latent_map(z, labels, str(tmp_path / "latent.png"), class_names=[f"c{i}" for i in range(10)])
  plots.save_latent_map(rng.normal(size=(50, 5)), labels[:50], str(tmp_path / "latent5.png"))
  plots.save_points(z, str(tmp_path / "points.png"), reference=z + 1)
  log = tmp_path / "metrics.jsonl"
  with open(log, "w") as f:
    for step in range(0, 100, 10):
      f.write(json.dumps({"step": step, "train/loss": 1.0 / (step + 1)}) + "\n")
      if step % 50 == 0:
        f.write(json.dumps({"step": step, "eval/nll": 2.0 - step / 100}) + "\n")
    f.write('{"step": 100, "train/lo')  # a truncated last line is skipped
  assert len(plots.read_metrics(str(log))) == 12
  for name in ("latent.png", "latent5.png", "points.png"):
    assert mpimg.imread(str(tmp_path / name)).shape[0] > 100
  img = mpimg.imread(plots.save_training_curves(str(log), str(tmp_path / "curves.png")))
  assert img.shape[1] > img.shape[0]  # two panels side by side
