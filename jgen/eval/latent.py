"""Latent-space tools: embed a split, walk between two latents, add an attribute vector, project on PCA axes.

Everything here reads the family's declared latent contract (jgen/family.py: `latents`, `latent_type`,
`latent_prior`, `latent_conditions`) and never its name:
- a map embeds examples (`Family.embed`: one point per example, the posterior mean, or the
  responsibilities of a discrete latent) and shows the first two principal components where the
  latent has more than two dimensions; a 2-D continuous latent also decodes a grid over its plane,
  a discrete one its components;
- an interpolation decodes the straight line (or, under a N(0, I) prior, the great circle) between
  two embedded examples, or between two seeded prior draws of a decode-only generator;
- arithmetic adds strength * (mean latent of class A - mean latent of class B) to examples of B; a
  family whose decoder takes the label decodes the examples' latents under every label instead.
Decoded images come back as the family gives them (a flow's unclipped); plots clip.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jgen.errors import UserError
from jgen.train.compile_options import step_jit

BATCH_SIZE = 256  # one compiled shape for every embed / decode call (batches padded to it)


# ---- what a family can do ------------------------------------------------------------------------------
def _name(family) -> str:
  return family.config.model.name


def check_encodes(family, command: str) -> None:
  """One line unless the family encodes examples into a continuous or discrete latent."""
  if not getattr(family, "latents", False):
    raise UserError(f"{_name(family)} declares no latents (no encode/decode): `jgen latent {command}` needs a "
                    f"latent-variable model (a VAE, a flow, PPCA, a mixture)")
  if family.latents == "decode":
    hint = " `jgen latent interpolate --from SEED --to SEED` walks between two of its prior draws" \
        if command != "interpolate" else ""
    raise UserError(f"{_name(family)} only decodes (a generator of z ~ N(0, I)): nothing encodes examples "
                    f"into its latent space for `jgen latent {command}`;{hint}".rstrip(";"))


def check_continuous(family, command: str) -> None:
  if family.latent_type != "continuous":
    what = "nothing lies between two components" if command == "interpolate" else "it has no directions to add"
    raise UserError(f"{_name(family)} has a discrete latent (z is a mixture component): {what} for "
                    f"`jgen latent {command}`; `jgen latent map` shows its components")


def check_spherical(family) -> None:
  if family.latent_prior != "gaussian":
    raise UserError(f"--spherical needs a N(0, I) prior on z (spherical interpolation follows its shell); "
                    f"{_name(family)} declares none: drop --spherical")


def prior_dim(family) -> int:
  """The dimension of a decode-only generator's z ~ N(0, I) (its config's model.latent_dim)."""
  dim = family.config.model.get("latent_dim")
  if not isinstance(dim, int) or dim <= 0:
    raise UserError(f"{_name(family)} decodes z ~ N(0, I) but its config names no model.latent_dim: "
                    f"its latent dimension is unknown")
  return dim


def seed_latents(dim: int, seeds) -> np.ndarray:
  """One prior draw z ~ N(0, I) [dim] per seed (key(seed)), stacked [len(seeds), dim]."""
  return np.stack([np.asarray(jax.random.normal(jax.random.key(s), (dim,))) for s in seeds])


# ---- embed and decode in fixed-size batches ----------------------------------------------------------------
class Codec:
  """A family's embed and decode on host arrays, jitted once each and run in padded batches of BATCH_SIZE.

  `labels` reach encode / decode as cond {"label": int32 [B]} for families with `latent_conditions`
  ("label" is the only condition the data offers).
  """

  def __init__(self, family, state, batch_size: int = BATCH_SIZE):
    unknown = [k for k in family.latent_conditions if k != "label"]
    if unknown:
      raise UserError(f"{_name(family)} encodes and decodes under {', '.join(unknown)}, which the data does not give")
    self.family, self.state, self.batch_size = family, state, batch_size
    self.conditional = bool(family.latent_conditions)
    decode = (lambda s, z, cond: family.decode(s, z, cond)) if self.conditional else \
        (lambda s, z, cond: family.decode(s, z))
    self._embed = step_jit(lambda s, x, cond: family.embed(s, x, cond))
    self._decode = step_jit(decode)

  def _batched(self, fn, x, labels):
    x, size = np.asarray(x), self.batch_size
    if self.conditional:
      if labels is None:
        raise ValueError("a conditional latent needs labels")
      labels = np.broadcast_to(np.asarray(labels, np.int32), (len(x),))
    out = []
    for start in range(0, len(x), size):
      chunk = x[start:start + size]
      cond = {"label": jnp.asarray(_pad(labels[start:start + size], size))} if self.conditional else None
      out.append(np.asarray(fn(self.state, jnp.asarray(_pad(chunk, size)), cond))[:len(chunk)])
    return np.concatenate(out)

  def embed(self, x, labels=None) -> np.ndarray:
    """One latent point [N, d] per example (float64 on the host)."""
    return self._batched(self._embed, x, labels).astype(np.float64)

  def decode(self, z, labels=None) -> np.ndarray:
    """The data of latents z [N, d] (float32; the component means for integer z of a discrete latent)."""
    z = np.asarray(z)
    return self._batched(self._decode, z if z.dtype.kind == "i" else z.astype(np.float32), labels)


def _pad(a, size: int) -> np.ndarray:
  """`a` [n, ...] grown to [size, ...] by repeating its last row (the extra rows are dropped after the call)."""
  return np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)])


# ---- geometry ------------------------------------------------------------------------------------------
def lerp(z0, z1, t) -> np.ndarray:
  """(1 - t) z0 + t z1 for each t [T] -> [T, d]; the ends are z0 and z1 exactly."""
  z0, z1, t = np.asarray(z0, np.float64), np.asarray(z1, np.float64), np.asarray(t, np.float64)[:, None]
  return _pin_ends((1.0 - t) * z0 + t * z1, z0, z1, t)


def slerp(z0, z1, t) -> np.ndarray:
  """The great-circle walk between z0 and z1 (Shoemake, 1985; White, 2016): sin((1 - t) w) / sin w z0 +
  sin(t w) / sin w z1, w the angle between them; linear where they are (anti)parallel. Between latents of
  equal norm it keeps that norm, where the straight line passes nearer the origin than a N(0, I) prior's
  samples ever lie in many dimensions."""
  z0, z1, t = np.asarray(z0, np.float64), np.asarray(z1, np.float64), np.asarray(t, np.float64)[:, None]
  norms = np.linalg.norm(z0) * np.linalg.norm(z1)
  omega = np.arccos(np.clip(z0 @ z1 / norms, -1.0, 1.0)) if norms > 0 else 0.0
  if np.sin(omega) < 1e-6:
    return lerp(z0, z1, t[:, 0])
  path = (np.sin((1.0 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)
  return _pin_ends(path, z0, z1, t)


def _pin_ends(path, z0, z1, t):
  path[t[:, 0] == 0.0] = z0  # so the strip's ends decode exactly the endpoints' own latents
  path[t[:, 0] == 1.0] = z1
  return path


def pca(z, k: int = 2):
  """The first `k` principal components of points z [N, d]: (projection [N, k], components [k, d], mean [d],
  explained variance ratio [k]). Each component's sign makes its largest loading positive. Fewer than `k`
  dimensions pad the projection with zeros (ratio 0)."""
  z = np.asarray(z, np.float64)
  mean = z.mean(0)
  centred = z - mean
  _, s, vt = np.linalg.svd(centred, full_matrices=False)
  signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
  vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
  total = np.sum(s**2)
  ratio = s**2 / total if total > 0 else np.zeros_like(s)
  components, ratio = vt[:k], ratio[:k]
  proj = centred @ components.T
  if proj.shape[1] < k:
    pad = k - proj.shape[1]
    proj = np.pad(proj, ((0, 0), (0, pad)))
    components = np.pad(components, ((0, pad), (0, 0)))
    ratio = np.pad(ratio, (0, pad))
  return proj, components, mean, ratio


def plane_grid(points, side: int) -> tuple[np.ndarray, list]:
  """A side x side grid [side * side, 2] over the central 98 % of 2-D points, row by row from the top
  (largest z[1]) so it reads like the scatter; and its [x0, x1, y0, y1] extent."""
  lo, hi = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
  xs, ys = np.linspace(lo[0], hi[0], side), np.linspace(hi[1], lo[1], side)
  grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
  return grid, [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]


def mse(a, b) -> np.ndarray:
  """Mean squared difference per example [N]."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return ((a - b) ** 2).reshape(len(a), -1).mean(1)


# ---- the three tools -------------------------------------------------------------------------------------
def latent_map(codec: Codec, x, labels, grid_side: int = 15) -> dict:
  """Embedded points [N, 2] (projected where wider) with their projection, and the decoded grid where there
  is one: the plane of a 2-D continuous latent (under the first example's label for a conditional family),
  or every component of a discrete latent."""
  family = codec.family
  z = codec.embed(x, labels)
  out = {"latent_dim": int(z.shape[1]), "labels": np.asarray(labels)}
  if z.shape[1] == 2 and family.latent_type == "continuous":
    out.update(points=z, projection={"kind": "none", "axes": ["z[0]", "z[1]"]})
  else:
    proj, components, mean, ratio = pca(z)
    what = "responsibilities" if family.latent_type == "discrete" else "latent means"
    out.update(points=proj, components=components, mean=mean,
               projection={"kind": "pca", "of": what, "explained_variance_ratio": [float(r) for r in ratio],
                           "axes": [f"PC{i + 1} ({100 * r:.1f} % of the variance)" for i, r in enumerate(ratio)]})
  if family.latent_type == "discrete":
    k = z.shape[1]
    out.update(grid=codec.decode(np.arange(k, dtype=np.int32)), grid_kind="component means", grid_shape=[1, k])
  elif z.shape[1] == 2:
    grid, extent = plane_grid(z, grid_side)
    grid_label = int(np.asarray(labels)[0]) if codec.conditional else None
    out.update(grid=codec.decode(grid, grid_label), grid_kind="decoded latent plane", grid_extent=extent,
               grid_shape=[grid_side, grid_side], grid_latents=grid, grid_label=grid_label)
  return out


def interpolate(codec: Codec, x_pair, labels_pair, steps: int, spherical: bool = False, z=None) -> dict:
  """Decoded latents [steps, ...] from embed(x_pair[0]) to embed(x_pair[1]), each endpoint embedded under its
  own label and the walk decoded under the start's; and each endpoint's reconstruction under its own label.
  Given endpoint latents `z` [2, d] instead (a generator's prior draws), just the decoded walk; a conditional
  generator decodes it under every class, one row each ("decoded" [C, steps, ...])."""
  t = np.linspace(0.0, 1.0, steps)
  if z is not None:
    path = (slerp if spherical else lerp)(z[0], z[1], t)
    if codec.conditional:
      decoded = np.stack([codec.decode(path, c) for c in range(codec.family.spec.num_classes)])
    else:
      decoded = codec.decode(path)
    return {"t": t, "endpoints": z, "latents": path, "decoded": decoded}
  labels_pair = np.asarray(labels_pair, np.int32)
  z = codec.embed(x_pair, labels_pair)
  path = (slerp if spherical else lerp)(z[0], z[1], t)
  decoded = codec.decode(path, labels_pair[0])
  recon = codec.decode(z, labels_pair)
  return {"t": t, "endpoints": z, "latents": path, "decoded": decoded, "reconstructions": recon,
          "reconstruction_mse": mse(recon, x_pair), "decode_label": int(labels_pair[0]) if codec.conditional else None}


def arithmetic(codec: Codec, x, labels, a: int, b: int, strengths, num: int) -> dict:
  """z + s * (mean z of class a - mean z of class b) decoded for the first `num` examples of class b (rows) and
  each strength s (columns), and the same walk from the mean of class b (s = 1 reaches the mean of a).

  A conditional family's latent leaves the class to the label: its rows decode each example's latent under
  every class label instead (columns: labels 0..C-1), and there is no morph row.
  """
  labels = np.asarray(labels)
  in_a, in_b = np.flatnonzero(labels == a), np.flatnonzero(labels == b)
  rows, counts = in_b[:num], {"a": len(in_a), "b": len(in_b)}
  if codec.conditional:
    z = codec.embed(x[rows], labels[rows])
    classes = np.arange(codec.family.spec.num_classes, dtype=np.int32)
    cells = np.stack([codec.decode(z, c) for c in classes], axis=1)
    return {"rows": rows, "columns": classes, "decoded": cells, "examples": x[rows], "counts": counts,
            "reconstruction_mse": mse(codec.decode(z, labels[rows]), x[rows])}
  z = codec.embed(x, labels)
  mean_a, mean_b = z[in_a].mean(0), z[in_b].mean(0)
  vector = mean_a - mean_b
  strengths = np.asarray(strengths, np.float64)
  latents = z[rows][:, None, :] + strengths[None, :, None] * vector
  flat = codec.decode(latents.reshape(-1, z.shape[1]))
  decoded = flat.reshape((len(rows), len(strengths)) + flat.shape[1:])
  morph = codec.decode(mean_b + strengths[:, None] * vector)
  return {"rows": rows, "columns": strengths, "decoded": decoded, "morph": morph, "examples": x[rows],
          "vector_norm": float(np.linalg.norm(vector)), "latents": latents,
          "reconstruction_mse": mse(codec.decode(z[rows]), x[rows]), "counts": counts}


# ---- the commands: restore, compute, draw, record ---------------------------------------------------------
def _restore(workdir: str, checkpoint: str, command: str, encodes: bool = True):
  from jgen.train.checkpoint import restore_for_inference

  config, family, state = restore_for_inference(workdir, checkpoint)
  if encodes or not getattr(family, "latents", False):
    check_encodes(family, command)
  return config, family, state


def _load(config, split: str, limit: int | None):
  from jgen.eval.suite import load_split

  return load_split(config.data.name, split, limit, source_dir=config.data.source_dir or None,
                    validation_size=config.data.validation_size)


def _record(command, workdir, checkpoint, config, family, state, **fields) -> dict:
  return {"command": f"jgen latent {command}", "workdir": os.path.abspath(workdir), "model": _name(family),
          "dataset": config.data.name, "checkpoint": checkpoint, "step": int(np.asarray(state.step)),
          "latents": family.latents, "latent_type": family.latent_type, "latent_prior": family.latent_prior,
          "latent_conditions": list(family.latent_conditions), **fields}


def sibling(out: str, tail: str) -> str:
  """A file next to `out` with the same stem: sibling("a/map.png", "_grid") -> "a/map_grid.png"."""
  stem, suffix = os.path.splitext(out)
  return f"{stem}{tail}{suffix}" if tail.startswith("_") else stem + tail


def _write_json(out: str, record: dict) -> list[str]:
  """Writes the record next to `out`; returns every file the command wrote, as the user named them."""
  path = sibling(out, ".json")
  with open(path, "w") as f:
    json.dump({**record, "files": [os.path.abspath(p) for p in record["files"]]}, f, indent=2)
  return record["files"] + [path]


def _images(x) -> np.ndarray:
  return np.clip(np.asarray(x, np.float32), 0.0, 1.0)  # NaN (a blank cell) stays NaN


def run_map(workdir, out, split="test", num_examples=2000, checkpoint="latest", grid_side=15):
  """`jgen latent map`: the scatter (out) and, where there is one, the decoded grid (out's stem + _grid)."""
  from jgen.data.classes import class_names
  from jgen.eval import plots

  config, family, state = _restore(workdir, checkpoint, "map")
  x, labels = _load(config, split, num_examples)
  m = latent_map(Codec(family, state), x, labels, grid_side)
  names = class_names(config.data.name, family.spec.num_classes)
  proj = m["projection"]
  how = f"first two principal components of the {m['latent_dim']}-D {proj['of']}" if proj["kind"] == "pca" \
      else "the 2-D latent"
  plots.save_latent_map(m["points"], labels, out, class_names=names, axis_labels=proj["axes"],
                        title=f"{_name(family)}: {len(x)} {split} examples, {how}")
  files = [out]
  if "grid" in m:
    grid_out = sibling(out, "_grid")
    what = f"{m['grid_kind']} ({m['grid_shape'][0]} x {m['grid_shape'][1]})"
    if m.get("grid_label") is not None:
      what += f", decoded under label {names[m['grid_label']]}"
    plots.save_decoded_grid(m["grid"], grid_out, m["grid_shape"], reference=None if family.spec.is_image else x,
                            title=f"{_name(family)}: {what}")
    files.append(grid_out)
  record = _record("map", workdir, checkpoint, config, family, state, split=split, n=len(x),
                   latent_dim=m["latent_dim"], projection=proj, files=files)
  if "grid" in m:
    record["grid"] = {k.removeprefix("grid_"): m[k] for k in ("grid_kind", "grid_shape", "grid_extent", "grid_label")
                      if k in m}
  return record, _write_json(out, record)


def run_interpolate(workdir, out, start, end, steps=10, spherical=False, split="test", checkpoint="latest"):
  """`jgen latent interpolate`: the strip between examples (or, for a decode-only family, seeds) start and end."""
  from jgen.data.classes import class_names
  from jgen.eval import plots

  config, family, state = _restore(workdir, checkpoint, "interpolate", encodes=False)
  if family.latents is True:
    check_continuous(family, "interpolate")
  if spherical:
    check_spherical(family)
  codec = Codec(family, state)
  mode = "spherical" if spherical else "linear"
  if family.latents == "decode":
    r = interpolate(codec, None, None, steps, spherical, z=seed_latents(prior_dim(family), (start, end)))
    cells, cols = r["decoded"], [f"{t:.2g}" for t in r["t"]]
    fields = dict(endpoints=f"prior draws z ~ N(0, I) of seeds {start} and {end}", seeds=[start, end])
    title = f"{_name(family)}: {mode} walk between the prior draws of seeds {start} and {end}"
    if codec.conditional:  # one row per class: the same walk under every label
      row_labels = class_names(config.data.name, family.spec.num_classes) or list(range(len(cells)))
      fields["row_labels"] = [str(v) for v in row_labels]
      title += ", one row per class"
  else:
    x, labels = _load(config, split, max(start, end) + 1)
    for flag, i in (("--from", start), ("--to", end)):
      if i >= len(x):
        raise UserError(f"{flag} {i}: the {split} split of {config.data.name} has {len(x)} examples "
                        f"(0..{len(x) - 1})")
    pair, pair_labels = x[[start, end]], labels[[start, end]]
    r = interpolate(codec, pair, pair_labels, steps, spherical)
    names = class_names(config.data.name, family.spec.num_classes)
    cells = np.concatenate([pair[:1], r["decoded"], pair[1:]])
    cols = [f"#{start}"] + [f"{t:.2g}" for t in r["t"]] + [f"#{end}"]
    fields = dict(split=split, endpoints=f"{split} examples embedded (posterior means where encode gives a spread)",
                  indices=[start, end], labels=[int(v) for v in pair_labels],
                  label_names=[names[int(v)] for v in pair_labels] if names else None,
                  reconstruction_mse=[float(v) for v in r["reconstruction_mse"]], decode_label=r["decode_label"])
    title = f"{_name(family)}: {mode} walk from {split} #{start} to #{end}, data at both ends"
    if r["decode_label"] is not None:
      title += f"; decoded under the start's label {names[r['decode_label']]}"
  if family.spec.is_image:
    rows = _images(cells) if cells.ndim == 5 else _images(cells)[None]
    plots.save_image_table(rows, out, col_labels=cols, row_labels=fields.get("row_labels"), title=title)
  else:
    plots.save_point_paths(r["decoded"][None], out, reference=_load(config, split, 2000)[0], title=title)
  z = r["latents"]
  record = _record("interpolate", workdir, checkpoint, config, family, state, mode=mode, steps=steps,
                   t=[float(t) for t in r["t"]], latent_dim=int(z.shape[1]),
                   latent_norms=[float(v) for v in np.linalg.norm(z, axis=1)], files=[out], **fields)
  return record, _write_json(out, record)


def run_arithmetic(workdir, out, a_text, strengths=None, num=8, num_examples=2000, split="test",
                   checkpoint="latest"):
  """`jgen latent arithmetic`: rows of CLASS_B examples moved along mean(A) - mean(B) (or, conditional,
  decoded under every label), and the morph between the class means."""
  from jgen.data.classes import class_names, parse_pair
  from jgen.eval import plots

  config, family, state = _restore(workdir, checkpoint, "arithmetic")
  check_continuous(family, "arithmetic")
  names = class_names(config.data.name, family.spec.num_classes)
  if not family.spec.num_classes:
    raise UserError(f"{config.data.name} has no classes: `jgen latent arithmetic` needs labelled data")
  a, b = parse_pair(a_text, names)
  codec = Codec(family, state)
  if codec.conditional and strengths is not None:
    raise UserError(f"--strengths: {_name(family)} decodes under a class label, so its arithmetic decodes each "
                    f"example under every label; drop --strengths")
  strengths = (0.0, 0.25, 0.5, 0.75, 1.0) if strengths is None else strengths
  x, labels = _load(config, split, num_examples)
  for c in (a, b):
    if not np.any(labels == c):
      raise UserError(f"--attribute: no {names[c]!r} among the first {len(x)} {split} examples; raise --num-examples")
  r = arithmetic(codec, x, labels, a, b, strengths, num)
  rows = [f"#{i}" for i in r["rows"]]
  if codec.conditional:
    cols, title = ["data"] + [names[c] for c in r["columns"]], \
        f"{_name(family)}: {names[b]} examples decoded under every label"
    fields = dict(columns="class labels", labels=[int(c) for c in r["columns"]])
    cells = np.concatenate([r["examples"][:, None], r["decoded"]], axis=1)
  else:
    cols = ["data"] + [f"{s:g}" for s in strengths]
    title = f"{_name(family)}: {names[b]} + s ({names[a]} - {names[b]}), s by column; last row: from mean to mean"
    blank = np.full((1,) + x.shape[1:], np.nan, np.float32)
    cells = np.concatenate([np.concatenate([r["examples"][:, None], r["decoded"]], axis=1),
                            np.concatenate([blank, r["morph"]])[None]])
    rows.append(f"mean {names[b]}")
    fields = dict(columns="strengths", strengths=[float(s) for s in strengths], vector_norm=r["vector_norm"],
                  morph="decode(mean_B + s (mean_A - mean_B)): s = 0 the mean of B, s = 1 the mean of A")
  if family.spec.is_image:
    plots.save_image_table(_images(cells), out, col_labels=cols, row_labels=rows, title=title)
  else:
    paths = r["decoded"] if codec.conditional else np.concatenate([r["decoded"], r["morph"][None]])
    plots.save_point_paths(paths, out, reference=x, title=title)
  record = _record("arithmetic", workdir, checkpoint, config, family, state, split=split, n=len(x),
                   attribute={"a": {"label": a, "name": names[a], "examples": r["counts"]["a"]},
                              "b": {"label": b, "name": names[b], "examples": r["counts"]["b"]}},
                   indices=[int(i) for i in r["rows"]],
                   reconstruction_mse=[float(v) for v in r["reconstruction_mse"]], files=[out], **fields)
  return record, _write_json(out, record)
