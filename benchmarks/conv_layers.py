"""Forward + backward ms of the strided 4x4 conv layers of the conv VAE and the DCGAN, jgen against PyTorch.

  python benchmarks/conv_layers.py --reps 7 --inner 5

Each layer runs at the shape the configs train it at (the VAE at batch 128, configs/vae/conv_fashion_mnist.py;
the DCGAN at batch 64 with its full channels, configs/gan/dcgan_fashion_mnist.py, the generator in
upsample="transpose" mode). A jgen call is one jitted gradient of <layer(x), g> with respect to the parameters
and the input; the PyTorch call is the layer's forward and `backward(g)` (eager, NCHW). The variants of one layer
run interleaved, `inner` calls per timing; the table gives the median over `reps` timings and, since a shared
machine's other work only ever adds time, their minimum:

  nnx.ConvTranspose            flax's transposed convolution (lax.conv_transpose)
  SubpixelConvTranspose        jgen.nn.upsample, the lowering jgen uses (its choice of the two below)
  subpixel: 4 phase convs      the four 2x2 phase convolutions, interleaved
  subpixel: one 3x3 conv       one 3x3 convolution with the four phases as 4 * cout channels
  nnx.Conv                     flax's stride-2 convolution (what jgen uses)
  space-to-depth + 2x2 conv    the same stride-2 convolution as a stride-1 2x2 convolution over the padded input
                               rearranged space-to-depth (measured, not used: slower)

PyTorch is imported only here; "torch not installed" replaces its rows when it is missing.
"""

if __name__ == "__main__":  # as the `jgen` command runs: under tcmalloc where installed (jgen/host_allocator.py)
  from jgen import host_allocator

  host_allocator.use_tcmalloc()

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from jgen.nn import upsample

# (name, batch, side in, c_in, c_out, kind): "up" doubles the side (transposed conv), "down" halves it.
LAYERS = (
    ("VAE decoder 64->32, 7->14", 128, 7, 64, 32, "up"),
    ("VAE decoder 32->1, 14->28", 128, 14, 32, 1, "up"),
    ("VAE encoder 1->32, 28->14", 128, 28, 1, 32, "down"),
    ("VAE encoder 32->64, 14->7", 128, 14, 32, 64, "down"),
    ("DCGAN generator 128->64, 7->14", 64, 7, 128, 64, "up"),
    ("DCGAN generator 64->1, 14->28", 64, 14, 64, 1, "up"),
    ("DCGAN discriminator 1->64, 28->14", 64, 28, 1, 64, "down"),
    ("DCGAN discriminator 64->128, 14->7", 64, 14, 64, 128, "down"),
)


def space_to_depth_conv(x, kernel):
  """lax.conv(x, kernel, stride 2, "SAME") for a 4x4 kernel: pad as SAME does, fold each 2x2 block into the
  channels, and correlate with the kernel folded the same way (tap 2q + r -> position q, channel block r)."""
  b, h, w, cin = x.shape
  cout = kernel.shape[-1]
  pads = []
  for n in (h, w):
    total = max((-(-n // 2) - 1) * 2 + 4 - n, 0)
    pads.append((total // 2, total - total // 2))
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  hp, wp = xp.shape[1] // 2, xp.shape[2] // 2
  xs = xp.reshape(b, hp, 2, wp, 2, cin).transpose(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, 4 * cin)
  ks = kernel.reshape(2, 2, 2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * cin, cout)
  return lax.conv_general_dilated(xs, ks, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


class _Fn(nnx.Module):
  """A kernel + bias layer computed by a given function of (x, kernel)."""

  def __init__(self, fn, cin, cout, rngs):
    self.fn = fn
    self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (4, 4, cin, cout)))
    self.bias = nnx.Param(jnp.zeros((cout,)))

  def __call__(self, x):
    return self.fn(x, self.kernel[...]) + self.bias[...]


def jgen_variants(kind, cin, cout):
  rngs = nnx.Rngs(0)
  if kind == "up":
    auto = "phases" if cout >= upsample.FUSED_BELOW else "one 3x3"
    return {
        "nnx.ConvTranspose": nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs),
        f"SubpixelConvTranspose ({auto})": upsample.SubpixelConvTranspose(cin, cout, rngs=rngs),
        "subpixel: 4 phase convs": _Fn(lambda x, k: upsample.subpixel_conv_transpose(x, k, fused=False), cin, cout,
                                       rngs),
        "subpixel: one 3x3 conv": _Fn(lambda x, k: upsample.subpixel_conv_transpose(x, k, fused=True), cin, cout,
                                      rngs),
    }
  return {
      "nnx.Conv": nnx.Conv(cin, cout, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs),
      "space-to-depth + 2x2 conv": _Fn(space_to_depth_conv, cin, cout, rngs),
  }


def jgen_step(model, x, g):
  """A zero-argument call running the jitted forward + backward once (blocking)."""
  graphdef, params = nnx.split(model)
  grad = jax.jit(jax.grad(lambda p, x: jnp.vdot(nnx.merge(graphdef, p)(x), g), argnums=(0, 1)))
  return lambda: jax.block_until_ready(grad(params, x))


def torch_step(torch, kind, batch, side, cin, cout):
  nn = torch.nn
  layer = (nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1) if kind == "up"
           else nn.Conv2d(cin, cout, 4, stride=2, padding=1))
  x = torch.randn(batch, cin, side, side, requires_grad=True)
  g = torch.randn(*layer(x).shape)

  def step():
    layer.zero_grad(set_to_none=True)
    x.grad = None
    layer(x).backward(g)
  return step


def time_interleaved(steps: dict, reps: int, inner: int) -> dict:
  for step in steps.values():  # compile and warm up
    step(), step()
  times = {name: [] for name in steps}
  for _ in range(reps):
    for name, step in steps.items():
      t0 = time.perf_counter()
      for _ in range(inner):
        step()
      times[name].append((time.perf_counter() - t0) / inner * 1e3)
  return {name: (float(np.median(t)), float(np.min(t))) for name, t in times.items()}


def optional_torch(reps: int, inner: int):
  """PyTorch where installed, else None; prints the versions and the timing protocol first."""
  try:
    import torch
  except ImportError:
    torch = None
    print("torch not installed")
  threads = f", torch {torch.__version__} with {torch.get_num_threads()} threads" if torch else ""
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}{threads}; medians (minima) of {reps} x {inner} "
        "calls, forward + backward (grad w.r.t. params and input)\n")
  return torch


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reps", type=int, default=7)
  parser.add_argument("--inner", type=int, default=5)
  parser.add_argument("--only", default="", help="run the layers whose name contains this")
  args = parser.parse_args()
  torch = optional_torch(args.reps, args.inner)
  print("| layer | batch | implementation | median ms | min ms | median / torch |")
  print("| --- | --- | --- | --- | --- | --- |")
  for name, batch, side, cin, cout, kind in LAYERS:
    if args.only not in name:
      continue
    rng = np.random.default_rng(0)
    out_side = 2 * side if kind == "up" else -(-side // 2)
    x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(batch, out_side, out_side, cout)), jnp.float32)
    steps = {impl: jgen_step(model, x, g) for impl, model in jgen_variants(kind, cin, cout).items()}
    if torch is not None:
      steps["PyTorch (eager)"] = torch_step(torch, kind, batch, side, cin, cout)
    ms = time_interleaved(steps, args.reps, args.inner)
    ref = ms.get("PyTorch (eager)", (None,))[0]
    for impl, (median, least) in ms.items():
      ratio = f"{median / ref:.2f}" if ref else "torch not installed"
      print(f"| {name} | {batch} | {impl} | {median:.2f} | {least:.2f} | {ratio} |", flush=True)


if __name__ == "__main__":
  main()
