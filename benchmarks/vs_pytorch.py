"""Train steps/s of jgen's reference models against PyTorch twins of the same networks, side by side.

  python benchmarks/vs_pytorch.py --rounds 3 --seconds 5
  python benchmarks/vs_pytorch.py --models vae,dcgan --dtype bfloat16 --json vs_pytorch.json

(PyTorch is a benchmark-only dependency: `pip install -e .[bench]`.) For every model, jgen's side is the
jitted, sharded train step the training loop runs (loop.Runner, as benchmarks/train_speed.py: random data of
the dataset's shape and dtype, placed on the device once). PyTorch's side is the model's twin in
benchmarks/torch_twins/: the same layers, widths, normalisations, loss, optimizer, gradient clipping and EMA,
and the same parameter count (checked before anything is timed), trained by the standard eager step
(zero_grad, forward, loss, backward, fused Adam step) on in-memory tensors, and by the same step with the
forward pass and loss under torch.compile (mode default; backward through AOTAutograd, the optimizer eager).
Each framework runs its own native ops for the same function (a stride-2 transposed convolution is
nn.ConvTranspose2d(4, stride 2, padding 1), attention is F.scaled_dot_product_attention), with all of the
machine's CPU threads (torch.set_num_threads).

Fairness: jgen and PyTorch live in two worker processes, spawned once, so their thread pools never compete;
each builds, compiles and warms up every model first, then the parent alternates timed blocks (jgen, torch
eager, torch.compile) model by model, --rounds times, so machine noise hits all three alike. A block is a fixed
number of steps sized from the warm-up to last about --seconds (or exactly --steps). Reported per model: the
median steps/s of each over the rounds, their range, and jgen's median over each PyTorch median.

`--device cuda` trains the twins on the GPU (TF32 matmuls allowed, as XLA's default); jgen uses its default
backend, so on a GPU machine the script runs unchanged. `--dtype bfloat16` sets the jgen model's compute
dtype (`model.dtype`, or the diffusion U-Net's `model.compute_dtype`; "not supported" where a model has
neither) and runs the twins under torch.autocast(bfloat16).

Host allocator: jgen's worker runs under tcmalloc where it is installed, as the `jgen` command does
(jgen/host_allocator.py); PyTorch's runs on glibc's malloc, as a plain python process does, unless
`--torch-allocator tcmalloc`. The header line says which each side ran on.
"""

import argparse
import contextlib
import datetime
import json
import multiprocessing as mp
import os
import pathlib
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # torch_twins, in this process and in the spawned workers
sys.path.insert(0, str(ROOT))

from jgen import host_allocator  # noqa: E402

# name -> jgen config. PixelCNN, Glow and the transformer use their `cpu` networks: their `full` ones take
# seconds per step on a small CPU (swap with --config NAME=PATH:full on an accelerator).
MODELS = {
    "vae": "configs/vae/conv_fashion_mnist.py:full",
    "dcgan": "configs/gan/dcgan_fashion_mnist.py:full",
    "unet": "configs/diffusion/ddpm_fashion_mnist.py:cpu",
    "pixelcnn": "configs/autoregressive/pixelcnn_fashion_mnist.py:cpu",
    "glow": "configs/flow/glow_fashion_mnist.py:cpu",
    "transformer": "configs/seq/transformer_fortunes.py:cpu",
}
CALIBRATE_S = 0.5  # the warm-up run that sizes the timed blocks


def random_batch(spec: dict, n: int, seed: int = 0) -> dict:
  """A batch of the dataset's shape and dtype (uint8 images, token ids), the same on both sides."""
  rng = np.random.default_rng(seed)
  shape = tuple(spec["shape"])
  if spec["kind"] == "tokens":
    x = rng.integers(0, spec["vocab_size"], (n, *shape)).astype(np.int32)
  elif spec["dtype"] == "uint8":
    x = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
  else:
    x = rng.random((n, *shape), dtype=np.float32)
  return {"x": x, "label": rng.integers(0, max(spec["num_classes"], 1), n).astype(np.int32)}


def to_torch(batch: dict, device="cpu") -> dict:
  """A numpy batch as the twins read it: images NHWC -> NCHW (still uint8), token ids and labels int64."""
  import torch

  x = torch.from_numpy(batch["x"])
  x = x.permute(0, 3, 1, 2).contiguous() if x.dim() == 4 else x.long()
  return {"x": x.to(device), "label": torch.from_numpy(batch["label"]).long().to(device)}


def calibrate(run) -> float:
  """Steps/s of `run(n) -> seconds`, doubling n until a run lasts CALIBRATE_S."""
  n = 1
  while True:
    seconds = run(n)
    if seconds >= CALIBRATE_S:
      return n / seconds
    n *= 2


def first_line(e: BaseException, limit: int = 100) -> str:
  text = (str(e).strip().splitlines() or [""])[0]
  text = f"{type(e).__name__}: {text}" if text else type(e).__name__
  return text if len(text) <= limit else text[:limit - 3] + "..."


# ---- the jgen worker ------------------------------------------------------------------------------------------
class JgenSide:

  def __init__(self):
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the twins share the GPU
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import jax
    self.jax = jax
    self.models = {}

  def facts(self):
    jax = self.jax
    return {"jax": jax.__version__, "backend": jax.default_backend(),
            "devices": f"{len(jax.devices())}x {jax.devices()[0].device_kind}",
            "allocator": host_allocator.current()}

  def build(self, name, spec, overrides, dtype):
    """Loads and compiles the config's train step; returns what the twin needs and the step's facts."""
    from jgen import config as config_lib
    from jgen.errors import UserError
    from jgen.train import loop, sharding

    jnp = self.jax.numpy
    config = config_lib.load(spec, overrides)
    out = {"config": config.to_dict(), "supported": True}
    if dtype != "float32":
      key = next((k for k in ("dtype", "compute_dtype") if k in config.model), None)
      try:
        config = config_lib.load(spec, [*overrides, f"model.{key}={dtype}"]) if key else None
      except UserError:
        config = None
      if config is None:
        out["supported"] = False
        config = config_lib.load(spec, overrides)
    runner = loop.Runner(config)
    out.update(spec=runner.spec.to_json(), batch=runner.batch_size * runner.k)
    batch = random_batch(out["spec"], out["batch"])
    one = {k: v[:runner.batch_size] for k, v in batch.items()}
    runner.setup(one)
    out["params"] = int(runner.family.num_params(runner.abstract_state))
    if not out["supported"]:
      return out
    placed = runner.put_train_batch(batch)
    state = runner.init(runner.init_key, sharding.put_batch(one, runner.batch_sharding))
    flag = jnp.int32(0)
    t0 = time.perf_counter()
    compiled = runner.step.lower(state, placed, flag).compile()
    out["compile_s"] = time.perf_counter() - t0
    state, metrics, flag = compiled(state, placed, flag)
    out["loss0"] = float(metrics["loss"])  # computed with the initial weights
    self.models[name] = {"step": compiled, "state": state, "batch": placed, "flag": flag}
    out["rate"] = calibrate(lambda n: self.time(name, n)["seconds"])
    return out

  def time(self, name, steps):
    m = self.models[name]
    step, batch, state, flag = m["step"], m["batch"], m["state"], m["flag"]
    t0 = time.perf_counter()
    for _ in range(steps):
      state, metrics, flag = step(state, batch, flag)
    self.jax.block_until_ready((state, metrics))
    seconds = time.perf_counter() - t0
    m["state"], m["flag"] = state, flag
    return {"steps": steps, "seconds": seconds}


# ---- the PyTorch worker -----------------------------------------------------------------------------------------
class TorchSide:

  def __init__(self, device):
    import warnings

    import torch
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch")  # inductor's own deprecations
    self.torch = torch
    torch.set_num_threads(os.cpu_count())
    if device == "auto":
      device = "cuda" if torch.cuda.is_available() else "cpu"
    self.device = torch.device(device)
    if self.device.type == "cuda":
      torch.backends.cudnn.benchmark = True
      torch.set_float32_matmul_precision("high")  # TF32, as XLA's default precision on the GPU
    self.twins = {}

  def facts(self):
    torch = self.torch
    device = f"cuda ({torch.cuda.get_device_name(self.device)})" if self.device.type == "cuda" else "cpu"
    return {"torch": torch.__version__, "device": device, "threads": torch.get_num_threads(),
            "allocator": host_allocator.current()}

  def sync(self):
    if self.device.type == "cuda":
      self.torch.cuda.synchronize(self.device)

  def build(self, name, config, spec, batch_size, dtype):
    """The eager twin and the compiled twin (each its own copy), warmed up; "failed: ..." where one fails."""
    import torch_twins

    if spec["kind"] == "image" and spec["dtype"] != "uint8":
      return {"error": "not supported: the twins read uint8 images"}
    batch = to_torch(random_batch(spec, batch_size), self.device)
    out = {}
    for mode in ("eager", "compile"):
      self.torch.manual_seed(0)
      try:
        twin = torch_twins.build(name, config, spec, self.device, dtype, init_batch=batch)
      except torch_twins.Unsupported as e:
        return {"error": f"not supported: {e}"}
      out["params"] = twin.num_params()
      try:
        t0 = time.perf_counter()
        if mode == "compile":
          twin.compile()
        loss = float(twin.step(batch))  # the first step: the initial weights' loss (and, compiled, the compile)
        self.sync()
        out[f"{mode}_first_s"] = time.perf_counter() - t0
        out.setdefault("loss0", loss)
        self.twins[(name, mode)] = (twin, batch)
        self.time(name, mode, 2)  # any recompilation (guards on the second call) before the calibration
        out[f"{mode}_rate"] = calibrate(lambda n: self.time(name, mode, n)["seconds"])
      except Exception as e:  # noqa: BLE001 -- a compiler failure is a result to report, not a crash
        out[f"{mode}_error"] = f"failed: {first_line(e)}"
    return out

  def time(self, name, mode, steps):
    twin, batch = self.twins[(name, mode)]
    self.sync()
    t0 = time.perf_counter()
    for _ in range(steps):
      twin.step(batch)
    self.sync()
    return {"steps": steps, "seconds": time.perf_counter() - t0}


def worker(kind: str, conn, device: str) -> None:
  """Serves ("method", args...) requests from the parent until ("stop",); errors come back as {"error"}."""
  side = JgenSide() if kind == "jgen" else TorchSide(device)
  while True:
    request = conn.recv()
    if request[0] == "stop":
      break
    try:
      reply = getattr(side, request[0])(*request[1:])
    except Exception as e:  # noqa: BLE001 -- reported in the model's row
      reply = {"error": f"failed: {first_line(e)}"}
    conn.send(reply)
  conn.close()


class Worker:

  def __init__(self, ctx, kind, device):
    self.conn, child = ctx.Pipe()
    self.process = ctx.Process(target=worker, args=(kind, child, device), daemon=True)
    self.process.start()

  def __call__(self, *request):
    self.conn.send(request)
    return self.conn.recv()

  def stop(self):
    self.conn.send(("stop",))
    self.process.join(timeout=30)


# ---- the report ------------------------------------------------------------------------------------------------
def fmt(v: float) -> str:
  return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def summary(rates):
  """median and range of a list of steps/s, or None."""
  if not rates:
    return None
  return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "rounds": rates}


def cell(s, error):
  if error or not s:
    return error or "-"
  return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


def ratio(a, b):
  return f"{a['median'] / b['median']:.2f}" if a and b else "n/a"


def report(results, facts, args):
  j, t = facts["jgen"], facts["torch"]
  print(f"\nmachine: {os.cpu_count()} CPUs; jgen: jax {j['jax']} on {j['devices']}, {j['allocator']} malloc; torch "
        f"{t['torch']} on {t['device']}, {t['threads']} threads, {t['allocator']} malloc; {args.dtype}; {args.rounds} rounds of ~{args.seconds:g} s"
        f"{f' ({args.steps} steps)' if args.steps else ''}; {facts['date']}\n")
  print("| model | config | batch | params jgen / torch | jgen steps/s | torch eager steps/s | "
        "torch.compile steps/s | jgen / eager | jgen / compile |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  for name, r in results.items():
    params = f"{r.get('params_jgen', 0):,} / {r.get('params_torch', 0):,}" if "params_torch" in r else "-"
    print(f"| {name} | {r['config']} | {r.get('batch', '-')} | {params} | {cell(r['jgen'], r.get('jgen_error'))} | "
          f"{cell(r['eager'], r.get('eager_error'))} | {cell(r['compile'], r.get('compile_error'))} | "
          f"{ratio(r['jgen'], r['eager'])} | {ratio(r['jgen'], r['compile'])} |")
  print("\n| model | jgen compile s | torch.compile first step s | initial loss jgen | initial loss torch |")
  print("| --- | --- | --- | --- | --- |")
  for name, r in results.items():
    num = lambda key, f="{:.2f}": f.format(r[key]) if key in r else "-"
    print(f"| {name} | {num('compile_s')} | {num('compile_first_s')} | {num('loss0_jgen', '{:.4g}')} | "
          f"{num('loss0_torch', '{:.4g}')} |")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed block")
  parser.add_argument("--steps", type=int, default=0, help="a fixed number of steps per block instead of --seconds")
  parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                      help="the twins' device (auto: cuda where there is one); jgen uses its default backend")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="jgen config override for every model (the twins are built from the result)")
  parser.add_argument("--config", action="append", default=[], metavar="NAME=PATH:VARIANT",
                      help="another jgen config for one model, e.g. glow=configs/flow/glow_fashion_mnist.py:full")
  parser.add_argument("--json", metavar="PATH", help="also write every measurement here")
  parser.add_argument("--torch-allocator", default="system", choices=("system", "tcmalloc"),
                      help="PyTorch's malloc (jgen's worker runs under tcmalloc where installed, as `jgen` does)")
  args = parser.parse_args(argv)
  args.models = [m for m in args.models.split(",") if m]
  unknown = [m for m in args.models if m not in MODELS]
  if unknown:
    parser.error(f"unknown model(s) {', '.join(unknown)}; use {', '.join(MODELS)}")
  args.configs = dict(MODELS)
  for item in args.config:
    name, _, spec = item.partition("=")
    if name not in MODELS or not spec:
      parser.error(f"--config {item!r}: give NAME=PATH[:VARIANT], NAME one of {', '.join(MODELS)}")
    args.configs[name] = spec
  return args


def config_path(spec: str) -> str:
  """A config spec as given, or the repository's file of that name when run from elsewhere."""
  path, sep, variant = spec.partition(":")
  return spec if os.path.exists(path) else str(ROOT / path) + sep + variant


@contextlib.contextmanager
def environment(env):
  """os.environ replaced by `env` (None: unchanged) while a worker is spawned: the worker inherits it."""
  if env is None:
    yield
    return
  saved = dict(os.environ)
  os.environ.clear()
  os.environ.update(env)
  try:
    yield
  finally:
    os.environ.clear()
    os.environ.update(saved)


def main(argv=None):
  args = parse_args(argv)
  ctx = mp.get_context("spawn")
  tcmalloc_env = host_allocator.preload_environment()
  with environment(tcmalloc_env):
    jgen_w = Worker(ctx, "jgen", args.device)
  system_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
  with environment(tcmalloc_env if args.torch_allocator == "tcmalloc" else system_env):
    torch_w = Worker(ctx, "torch", args.device)
  try:
    facts = {"jgen": jgen_w("facts"), "torch": torch_w("facts"), "cpus": os.cpu_count(),
             "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}
    results = {}
    for name in args.models:  # build and warm up everything before any timing
      r = results[name] = {"config": args.configs[name], "jgen": None, "eager": None, "compile": None}
      j = jgen_w("build", name, config_path(args.configs[name]), args.set, args.dtype)
      if "error" in j:
        r["jgen_error"] = r["eager_error"] = r["compile_error"] = j["error"]
        print(f"{name}: jgen {j['error']}", flush=True)
        continue
      r.update(batch=j["batch"], params_jgen=j.get("params"), compile_s=j.get("compile_s"), rate_jgen=j.get("rate"))
      if not j["supported"]:
        r["jgen_error"] = "not supported"
      else:
        r["loss0_jgen"] = j["loss0"]
      t = torch_w("build", name, j["config"], j["spec"], j["batch"], args.dtype)
      if "error" in t:
        r["eager_error"] = r["compile_error"] = t["error"]
      else:
        r.update(params_torch=t["params"], loss0_torch=t.get("loss0"), compile_first_s=t.get("compile_first_s"),
                 rate_eager=t.get("eager_rate"), rate_compile=t.get("compile_rate"))
        for mode in ("eager", "compile"):
          if f"{mode}_error" in t:
            r[f"{mode}_error"] = t[f"{mode}_error"]
      print(f"{name}: params jgen {r.get('params_jgen')}, torch {r.get('params_torch')}; initial loss jgen "
            f"{r.get('loss0_jgen')}, torch {r.get('loss0_torch')}", flush=True)
      if r.get("params_jgen") is not None and "params_torch" in r and r["params_jgen"] != r["params_torch"]:
        sys.exit(f"{name}: the twin has {r['params_torch']:,} parameters, jgen's model {r['params_jgen']:,}: "
                 f"the twin is not the same network")

    blocks = {name: {"jgen": [], "eager": [], "compile": []} for name in args.models}
    for round_ in range(args.rounds):  # alternate jgen / eager / compile blocks so noise hits all alike
      for name in args.models:
        r = results[name]
        for side in ("jgen", "eager", "compile"):
          rate = r.get(f"rate_{side}")
          if r.get(f"{side}_error") or not rate:
            continue
          steps = args.steps or max(2, round(args.seconds * rate))
          out = jgen_w("time", name, steps) if side == "jgen" else torch_w("time", name, side, steps)
          if "error" in out:
            r[f"{side}_error"] = out["error"]
            continue
          blocks[name][side].append(out["steps"] / out["seconds"])
      print(f"round {round_ + 1}/{args.rounds} done", flush=True)
  finally:
    for w in (jgen_w, torch_w):
      if w.process.is_alive():
        w.stop()

  for name, r in results.items():
    for side in ("jgen", "eager", "compile"):
      r[side] = summary(blocks[name][side])
  report(results, facts, args)
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps({"facts": facts, "args": vars(args), "results": results}, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
  main()
