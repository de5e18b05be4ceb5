"""Twin of jgen's Glow (`flow.glow` on images) and its exact negative log-likelihood.

Preprocessing (logit with its Jacobian, or centring), then per scale: squeeze (space to depth, the same channel
order as jgen), K steps of ActNorm (initialised from the first batch) -> invertible 1x1 convolution in the LU
parametrisation (the same random rotations as jgen, drawn with numpy from seeds 0, 1, ...; full L and U
matrices held as parameters, as jgen holds them) -> affine channel coupling (a 3x3 conv, residual blocks of
3x3 and 1x1 convs, a zero-initialised 3x3 conv; tanh- or sigmoid-bounded scale), and half the channels
factored out after every scale but the last through the learned split prior (a zero-initialised 3x3 conv).
Images are dequantized uniformly; nll = -(log N(z; 0, I) + log |det|), nats per image.
"""

import math

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from torch_twins.common import Twin, flax_init_, require, zeros_

EPS = 1e-6


def squeeze(x):
  b, c, h, w = x.shape
  return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


class ActNorm(nn.Module):

  def __init__(self, channels):
    super().__init__()
    self.log_scale = nn.Parameter(torch.zeros(channels))
    self.bias = nn.Parameter(torch.zeros(channels))

  def forward(self, x, init=False):
    if init:  # zero mean, unit variance per channel on the init batch
      with torch.no_grad():
        log_scale = -torch.log(x.std(dim=(0, 2, 3), unbiased=False) + EPS)
        self.log_scale.copy_(log_scale)
        self.bias.copy_(-x.mean(dim=(0, 2, 3)) * torch.exp(log_scale))
    z = x * torch.exp(self.log_scale)[:, None, None] + self.bias[:, None, None]
    return z, (x.shape[2] * x.shape[3]) * self.log_scale.sum().expand(x.shape[0])


class InvConv1x1(nn.Module):

  def __init__(self, channels, seed):
    super().__init__()
    rotation = np.linalg.qr(np.random.default_rng(seed).standard_normal((channels, channels)))[0]
    p, lower, upper = scipy.linalg.lu(rotation)
    diag = np.diag(upper)
    self.register_buffer("p", torch.tensor(p, dtype=torch.float32))
    self.register_buffer("sign", torch.tensor(np.sign(diag), dtype=torch.float32))
    self.lower = nn.Parameter(torch.tensor(np.tril(lower, -1), dtype=torch.float32))
    self.upper = nn.Parameter(torch.tensor(np.triu(upper, 1), dtype=torch.float32))
    self.log_abs_diag = nn.Parameter(torch.tensor(np.log(np.abs(diag)), dtype=torch.float32))

  def forward(self, x, init=False):
    eye = torch.eye(x.shape[1], device=x.device)
    weight = self.p @ (torch.tril(self.lower, -1) + eye) @ (
        torch.triu(self.upper, 1) + torch.diag(self.sign * torch.exp(self.log_abs_diag)))
    z = F.conv2d(x, weight.to(x.dtype)[:, :, None, None])
    return z, (x.shape[2] * x.shape[3]) * self.log_abs_diag.sum().expand(x.shape[0])


class ConvNet(nn.Module):

  def __init__(self, cin, cout, features, num_blocks):
    super().__init__()
    self.first = nn.Conv2d(cin, features, 3, padding=1)
    self.blocks = nn.ModuleList([nn.ModuleList([nn.Conv2d(features, features, 3, padding=1),
                                                nn.Conv2d(features, features, 1)]) for _ in range(num_blocks)])
    self.last = nn.Conv2d(features, cout, 3, padding=1)
    flax_init_(self)
    zeros_(self.last)

  def forward(self, x):
    h = self.first(x)
    for conv, mix in self.blocks:
      h = h + mix(F.relu(conv(F.relu(h))))
    return self.last(F.relu(h))


class Coupling(nn.Module):
  """Channel mask, parity 0: the first half passes and sets the second half's shift and scale."""

  def __init__(self, channels, kind, scale, features, num_blocks):
    super().__init__()
    self.split, self.kind, self.scale = channels // 2, kind, scale
    n_out = channels - self.split
    self.net = ConvNet(self.split, 2 * n_out if kind == "affine" else n_out, features, num_blocks)
    self.tanh_scale = nn.Parameter(torch.ones(n_out)) if kind == "affine" and scale == "tanh" else None

  def forward(self, x, init=False):
    kept, changed = x[:, :self.split], x[:, self.split:]
    out = self.net(kept)
    if self.kind == "additive":
      return torch.cat([kept, changed + out], 1), x.new_zeros(x.shape[0])
    shift, h = out.chunk(2, dim=1)
    if self.scale == "sigmoid":
      log_s = F.logsigmoid(h + 2.0)
    else:
      log_s = self.tanh_scale[:, None, None] * torch.tanh(h)
    return torch.cat([kept, changed * torch.exp(log_s) + shift], 1), log_s.flatten(1).sum(1)


class SplitPrior(nn.Module):

  def __init__(self, kept, factored):
    super().__init__()
    self.net = nn.Conv2d(kept, 2 * factored, 3, padding=1)
    zeros_(self.net)

  def forward(self, x, ctx):
    mean, log_std = self.net(ctx).chunk(2, dim=1)
    return (x - mean) * torch.exp(-log_std), -log_std.flatten(1).sum(1)


class Glow(nn.Module):

  def __init__(self, image_shape, m):
    super().__init__()
    h, w, c = image_shape
    self.preprocess, self.alpha = m["preprocess"], m["logit_alpha"]
    seeds = iter(range(10**6))
    levels, priors = [], []
    for i in range(m["num_scales"]):
      c = 4 * c
      steps = []
      for _ in range(m["num_steps"]):
        steps += ([ActNorm(c)] if m["actnorm"] else []) + [InvConv1x1(c, next(seeds)),
                                                          Coupling(c, m["coupling"], m["scale"], m["features"],
                                                                   m["num_blocks"])]
      levels.append(nn.ModuleList(steps))
      if i < m["num_scales"] - 1:
        kept = c // 2
        priors.append(SplitPrior(kept, c - kept) if m["learned_split_prior"] else None)
        c = kept
    self.levels = nn.ModuleList(levels)
    self.priors = nn.ModuleList([p if p is not None else nn.Identity() for p in priors])
    self.learned_prior = m["learned_split_prior"]

  def forward(self, x, init=False):
    """(z [B, D], log |det dz/dx| [B]) of dequantized images in [0, 1]."""
    if self.preprocess == "logit":
      s = self.alpha + (1.0 - 2.0 * self.alpha) * x
      h = torch.log(s) - torch.log1p(-s)
      logdet = (math.log(1.0 - 2.0 * self.alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
    else:
      h, logdet = x - 0.5, x.new_zeros(x.shape[0])
    parts = []
    for i, steps in enumerate(self.levels):
      h = squeeze(h)
      for layer in steps:
        h, ld = layer(h, init)
        logdet = logdet + ld
      if i < len(self.priors):
        half = h.shape[1] // 2
        h, factored = h[:, :half], h[:, half:]
        if self.learned_prior:
          factored, ld = self.priors[i](factored, h)
          logdet = logdet + ld
        parts.append(factored.flatten(1))
    parts.append(h.flatten(1))
    return torch.cat(parts, 1), logdet


class GlowTwin(Twin):

  def __init__(self, config, spec, device, dtype="float32", init_batch=None):
    super().__init__(config, spec, device, dtype)
    m = self.model
    require(m, "flow.glow", name="flow.glow", dequantization="uniform", label_conditional=False)
    self.net = Glow(spec["shape"], m)
    self.net.to(self.device)
    if init_batch is not None:  # ActNorm from the first batch, as jgen's init
      with torch.no_grad():
        self.net(self.dequantize(init_batch["x"].to(self.device)), init=True)
    self.finish()

  @staticmethod
  def dequantize(x):
    return (x.float() + torch.rand(x.shape, device=x.device)) / 256.0

  def loss(self, batch):
    z, logdet = self.net(self.dequantize(batch["x"]))
    z, logdet = z.float(), logdet.float()
    log_prior = -0.5 * torch.sum(z**2, dim=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
    return -torch.mean(log_prior + logdet)
