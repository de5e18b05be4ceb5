"""What every twin shares: jgen's default initialisers, its optimizers and EMA, and the train step.

A twin reads the same resolved config blocks as the jgen family (`model`, `optim`, plain dicts) and the
dataset's spec (`shape`, `num_classes`, `vocab_size`), so `--set` overrides shape both networks alike.
Options a twin does not mirror raise `Unsupported`, which the benchmark reports instead of timing a
different network.
"""

import contextlib
import math

import torch
from torch import nn

TRUNC = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]: lecun_normal's correction


class Unsupported(ValueError):
  """A config option the twin does not mirror."""


def require(block: dict, what: str, **expected) -> None:
  for key, value in expected.items():
    got = block[key]
    if (tuple(got) if isinstance(got, list) else got) != value:
      raise Unsupported(f"{what}: the twin mirrors {key}={value!r} only (got {got!r})")


def flax_init_(module: nn.Module) -> nn.Module:
  """Flax's defaults: lecun-normal (truncated) kernels with the fan-in over input channels and taps, zero biases;
  embeddings normal with std 1 / sqrt(features) (nnx.Embed's variance scaling). Explicit inits come after this."""
  for m in module.modules():
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
      w = m.weight
      taps = math.prod(w.shape[2:]) if w.dim() > 2 else 1
      fan_in = (w.shape[0] if isinstance(m, nn.ConvTranspose2d) else w.shape[1]) * taps
      std = math.sqrt(1.0 / fan_in) / TRUNC
      with torch.no_grad():
        nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)
        if m.bias is not None:
          m.bias.zero_()
    elif isinstance(m, nn.Embedding):
      with torch.no_grad():
        m.weight.normal_(0.0, 1.0 / math.sqrt(m.weight.shape[1]))
  return module


def zeros_(*layers) -> None:
  with torch.no_grad():
    for layer in layers:
      layer.weight.zero_()
      if layer.bias is not None:
        layer.bias.zero_()


def lr_multiplier(optim: dict):
  """The factor of optim.lr at update n (0-based), as jgen.train.optim.make_optimizer's optax schedule."""
  warmup, decay = max(optim["warmup_steps"], 1), max(optim["decay_steps"], 1)
  if optim["decay"] == "cosine":
    def f(n):
      if n < warmup:
        return n / warmup
      frac = min(n - warmup, decay - warmup) / max(decay - warmup, 1)
      return 0.5 * (1.0 + math.cos(math.pi * frac))
    return f
  if optim["warmup_steps"]:
    return lambda n: min(n / warmup, 1.0)
  return None


def make_optimizer(params, optim: dict):
  """(optimizer, scheduler or None) of one jgen `optim` block: adam / adamw / sgd, eps 1e-8 as optax."""
  params = list(params)
  fused = {"fused": True} if all(p.device.type in ("cpu", "cuda") for p in params) else {}
  name = optim["name"]
  if name == "adam":
    opt = torch.optim.Adam(params, lr=optim["lr"], betas=(optim["b1"], optim["b2"]), eps=1e-8, **fused)
  elif name == "adamw":
    opt = torch.optim.AdamW(params, lr=optim["lr"], betas=(optim["b1"], optim["b2"]), eps=1e-8,
                            weight_decay=optim["weight_decay"], **fused)
  elif name == "sgd":
    opt = torch.optim.SGD(params, lr=optim["lr"], momentum=optim["momentum"], **fused)
  else:
    raise Unsupported(f"optimizer {name!r}")
  f = lr_multiplier(optim)
  return opt, (torch.optim.lr_scheduler.LambdaLR(opt, f) if f else None)


class Updater:
  """One network's optimizer step as jgen's apply_gradients: clip by global norm, the update, the EMA."""

  def __init__(self, module: nn.Module, optim: dict):
    self.params = [p for p in module.parameters()]
    self.opt, self.sched = make_optimizer(self.params, optim)
    self.clip = optim["grad_clip"]
    self.ema_decay = optim["ema_decay"]
    self.ema = [p.detach().clone() for p in self.params] if self.ema_decay > 0 else None

  def zero_grad(self):
    self.opt.zero_grad(set_to_none=True)

  def step(self, count: int):
    """`count`: the update's 1-based number, which sets the EMA's warm-up min(decay, (1 + n) / (10 + n))."""
    if self.clip:
      nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
    self.opt.step()
    if self.sched is not None:
      self.sched.step()
    if self.ema is not None:
      d = min(self.ema_decay, (1.0 + count) / (10.0 + count))
      with torch.no_grad():
        torch._foreach_lerp_(self.ema, [p.detach() for p in self.params], 1.0 - d)


class Twin:
  """A network with its optimizer and train step. Subclasses set `self.net` and write `loss(batch)`;
  `batch` holds `x` (uint8 images [B, C, H, W] or int64 tokens [B, T]) and `label` (int64 [B])."""

  def __init__(self, config: dict, spec: dict, device, dtype: str = "float32"):
    self.config, self.spec, self.device = config, spec, torch.device(device)
    self.model, self.optim = config["model"], config["optim"]
    self.autocast = dtype == "bfloat16"
    self.count = 0

  def finish(self):
    """After the networks exist: move them to the device, make the updaters."""
    self.net.to(self.device).train()
    self.updaters = {"model": Updater(self.net, self.optim)}
    self.loss_fn = self.loss

  def num_params(self) -> int:
    return sum(p.numel() for p in self.net.parameters())

  def compile(self):
    """The torch.compile column: the forward pass and loss compiled (backward through AOTAutograd), the
    fused optimizer step eager."""
    self.loss_fn = torch.compile(self.loss)

  def precision(self):
    if self.autocast:
      return torch.autocast(self.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

  def step(self, batch) -> torch.Tensor:
    self.count += 1
    up = self.updaters["model"]
    up.zero_grad()
    with self.precision():
      loss = self.loss_fn(batch)
    loss.backward()
    up.step(self.count)
    return loss.detach()

  def loss(self, batch) -> torch.Tensor:
    raise NotImplementedError
