"""Forward + backward ms of the normalisation and dropout layers of the U-Net and the transformer, flax's
(which jgen uses for the norms) and jgen's dropout against PyTorch's, at the shapes the `cpu` configs train
them at.

  python benchmarks/norm_layers.py --reps 7 --inner 5

  LayerNorm            transformer (configs/seq/transformer_fortunes.py:cpu): [32, 128, 128]
  GroupNorm + SiLU     U-Net (configs/diffusion/ddpm_fashion_mnist.py:cpu): [64, 28, 28, 32], [64, 14, 14, 64]
  Dropout 0.1          the U-Net's residual blocks: [64, 28, 28, 32], [64, 14, 14, 64]

A jgen or flax call is one jitted gradient of <layer(x), g> with respect to the parameters and the input,
compiled with the loop's compiler options (jgen/train/compile_options.py); the PyTorch call is the layer's
forward and `backward(g)` (eager, NCHW). The variants of one layer run interleaved, as in
benchmarks/conv_layers.py: the median over `reps` timings of `inner` calls, and their minimum.
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import os
import sys

import jax
import jax.numpy as jnp
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conv_layers import optional_torch, time_interleaved  # noqa: E402
from jgen.nn.attention import group_count  # noqa: E402
from jgen.nn.dropout import dropout  # noqa: E402
from jgen.train import compile_options  # noqa: E402

# (name, kind, shape): shape is channels-last.
LAYERS = (
    ("LayerNorm [32, 128, 128]", "layer", (32, 128, 128)),
    ("GroupNorm + SiLU [64, 28, 28, 32]", "group", (64, 28, 28, 32)),
    ("GroupNorm + SiLU [64, 14, 14, 64]", "group", (64, 14, 14, 64)),
    ("Dropout 0.1 [64, 28, 28, 32]", "dropout", (64, 28, 28, 32)),
    ("Dropout 0.1 [64, 14, 14, 64]", "dropout", (64, 14, 14, 64)),
)


class _Dropout(nnx.Module):
  def __init__(self, fn):
    self.fn = fn

  def __call__(self, x):
    return self.fn(x)


class _GroupNormSiLU(nnx.Module):
  def __init__(self, norm):
    self.norm = norm

  def __call__(self, x):
    return nnx.silu(self.norm(x))


def jax_variants(kind, channels):
  if kind == "layer":
    return {"nnx.LayerNorm": nnx.LayerNorm(channels, rngs=nnx.Rngs(0))}
  if kind == "group":
    kw = dict(num_groups=group_count(channels), rngs=nnx.Rngs(0))
    return {"nnx.GroupNorm": _GroupNormSiLU(nnx.GroupNorm(channels, **kw))}
  key = jax.random.key(0)
  flax_dropout = nnx.Dropout(0.1)
  return {"nnx.Dropout": _Dropout(lambda x: flax_dropout(x, deterministic=False, rngs=key)),
          "jgen dropout": _Dropout(lambda x: dropout(x, 0.1, key))}


def jax_step(model, x, g):
  graphdef, params = nnx.split(model)
  loss = lambda p, x: jnp.vdot(nnx.merge(graphdef, p)(x), g)
  grad = jax.jit(jax.grad(loss, argnums=(0, 1)), compiler_options=compile_options.step_options("cpu"))
  return lambda: jax.block_until_ready(grad(params, x))


def torch_step(torch, kind, shape):
  nn = torch.nn
  channels = shape[-1]
  if kind == "layer":
    layer, x = nn.LayerNorm(channels), torch.randn(*shape, requires_grad=True)
  else:
    x = torch.randn(shape[0], channels, *shape[1:-1], requires_grad=True)  # NCHW
    layer = (nn.Sequential(nn.GroupNorm(group_count(channels), channels), nn.SiLU()) if kind == "group"
             else nn.Dropout(0.1))
  g = torch.randn(*x.shape)

  def step():
    layer.zero_grad(set_to_none=True)
    x.grad = None
    layer(x).backward(g)
  return step


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reps", type=int, default=7)
  parser.add_argument("--inner", type=int, default=5)
  args = parser.parse_args()
  torch = optional_torch(args.reps, args.inner)
  print("| layer | variant | ms (min) |")
  print("| --- | --- | --- |")
  for name, kind, shape in LAYERS:
    x = jax.random.normal(jax.random.key(1), shape)
    g = jax.random.normal(jax.random.key(2), shape)
    steps = {variant: jax_step(model, x, g) for variant, model in jax_variants(kind, shape[-1]).items()}
    if torch is not None:
      steps["PyTorch eager"] = torch_step(torch, kind, shape)
    for variant, (median, low) in time_interleaved(steps, args.reps, args.inner).items():
      print(f"| {name} | {variant} | {median:.2f} ({low:.2f}) |", flush=True)


if __name__ == "__main__":
  main()
