"""Twin of jgen's DDPM U-Net (`ddpm.unet`, jgen.nn.unet) and its simple loss.

Residual blocks (group norm, SiLU, 3x3 conv, the time embedding's scale and shift after the second group norm,
dropout, a zero-initialised 3x3 conv, a 1x1 skip where widths differ), self-attention blocks (group norm, one
qkv linear, F.scaled_dot_product_attention, a zero-initialised projection) at the chosen levels and in the
middle, stride-2 3x3 downsampling convs, nearest upsampling to the skip's size + 3x3 conv, a sinusoidal time
embedding through a two-layer MLP plus a class embedding with a "no label" row (classifier-free guidance).
Loss: ||eps - net(x_t, t, label)||^2 at a uniform t, labels dropped with probability p_uncond.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torch_twins.common import Twin, flax_init_, require, zeros_


def group_norm(channels):
  return nn.GroupNorm(math.gcd(channels, 32), channels, eps=1e-6)  # jgen.nn.attention.group_count, flax's eps


class ResBlock(nn.Module):

  def __init__(self, cin, cout, temb_dim, dropout):
    super().__init__()
    self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
    self.temb_proj = nn.Linear(temb_dim, 2 * cout)
    self.norm2 = group_norm(cout)
    self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
    self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
    self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

  def forward(self, x, temb):
    h = self.conv1(F.silu(self.norm1(x)))
    scale, shift = self.temb_proj(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
    h = F.silu(self.norm2(h) * (1.0 + scale) + shift)
    return self.skip(x) + self.conv2(self.dropout(h))


class SelfAttention(nn.Module):

  def __init__(self, channels, num_heads):
    super().__init__()
    self.heads = num_heads
    self.norm = group_norm(channels)
    self.qkv = nn.Linear(channels, 3 * channels)
    self.proj = nn.Linear(channels, channels)

  def forward(self, x):
    b, c, h, w = x.shape
    tokens = self.norm(x).flatten(2).transpose(1, 2)  # [B, HW, C]
    q, k, v = self.qkv(tokens).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, HW, d]
    out = self.proj(out.transpose(1, 2).reshape(b, h * w, c))
    return x + out.transpose(1, 2).view(b, c, h, w)


class ResAttnBlock(nn.Module):

  def __init__(self, cin, cout, temb_dim, attention, num_heads, dropout):
    super().__init__()
    self.res = ResBlock(cin, cout, temb_dim, dropout)
    self.attn = SelfAttention(cout, num_heads) if attention else None

  def forward(self, x, temb):
    h = self.res(x, temb)
    return h if self.attn is None else self.attn(h)


class Downsample(nn.Conv2d):
  def __init__(self, channels):
    super().__init__(channels, channels, 3, stride=2, padding=1)


class Upsample(nn.Module):

  def __init__(self, channels):
    super().__init__()
    self.conv = nn.Conv2d(channels, channels, 3, padding=1)

  def forward(self, x, size):
    return self.conv(F.interpolate(x, size=size, mode="nearest"))


class UNet(nn.Module):

  def __init__(self, in_channels, channels, channel_mults, num_res_blocks, attention_levels, num_heads, dropout,
               num_classes):
    super().__init__()
    temb_dim = 4 * channels
    self.channels, self.num_classes = channels, num_classes
    self.time1, self.time2 = nn.Linear(channels, temb_dim), nn.Linear(temb_dim, temb_dim)
    self.class_embed = nn.Embedding(num_classes + 1, temb_dim) if num_classes else None
    self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
    block = dict(num_heads=num_heads, dropout=dropout)
    down, skips, ch = [], [channels], channels
    for level, mult in enumerate(channel_mults):
      for _ in range(num_res_blocks):
        down.append(ResAttnBlock(ch, mult * channels, temb_dim, level in attention_levels, **block))
        ch = mult * channels
        skips.append(ch)
      if level != len(channel_mults) - 1:
        down.append(Downsample(ch))
        skips.append(ch)
    self.down = nn.ModuleList(down)
    self.mid1 = ResBlock(ch, ch, temb_dim, dropout)
    self.mid_attn = SelfAttention(ch, num_heads)
    self.mid2 = ResBlock(ch, ch, temb_dim, dropout)
    up = []
    for level, mult in reversed(list(enumerate(channel_mults))):
      for _ in range(num_res_blocks + 1):
        up.append(ResAttnBlock(ch + skips.pop(), mult * channels, temb_dim, level in attention_levels, **block))
        ch = mult * channels
      if level != 0:
        up.append(Upsample(ch))
    self.up = nn.ModuleList(up)
    self.norm_out = group_norm(ch)
    self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
    flax_init_(self)
    # Zero-initialised as in jgen: each residual branch, attention projection and the output start at zero.
    zeros_(self.conv_out, *(m.conv2 for m in self.modules() if isinstance(m, ResBlock)),
           *(m.proj for m in self.modules() if isinstance(m, SelfAttention)))
    half = channels // 2
    self.register_buffer("freqs", torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / half))

  def time_embedding(self, t):
    args = t.float()[:, None] * self.freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if self.channels % 2:
      emb = F.pad(emb, (0, 1))
    return self.time2(F.silu(self.time1(emb)))

  def forward(self, x, t, label=None):
    temb = self.time_embedding(t)
    if self.class_embed is not None:
      if label is None:
        label = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
      temb = temb + self.class_embed(label)
    h = self.conv_in(x)
    hs = [h]
    for layer in self.down:
      h = layer(h) if isinstance(layer, Downsample) else layer(h, temb)
      hs.append(h)
    h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
    for layer in self.up:
      if isinstance(layer, Upsample):
        h = layer(h, hs[-1].shape[2:])
      else:
        h = layer(torch.cat([h, hs.pop()], dim=1), temb)
    return self.conv_out(F.silu(self.norm_out(h)))


def alphas_cumprod(schedule: str, num_steps: int) -> np.ndarray:
  """jgen.families.diffusion.schedules, in float64 numpy."""
  if schedule == "linear":
    scale = 1000.0 / num_steps
    betas = np.linspace(scale * 1e-4, scale * 0.02, num_steps)
  else:
    f = lambda u: np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2
    u = np.arange(num_steps + 1, dtype=np.float64) / num_steps
    abar = f(u) / f(0.0)
    betas = np.minimum(1.0 - abar[1:] / abar[:-1], 0.999)
  return np.cumprod(1.0 - betas)


class DDPMTwin(Twin):

  def __init__(self, config, spec, device, dtype="float32", init_batch=None):
    super().__init__(config, spec, device, dtype)
    m = self.model
    require(m, "ddpm.unet", name="ddpm.unet")
    self.num_classes = spec["num_classes"] if m["label_conditional"] else 0
    self.p_uncond, self.prediction = m["p_uncond"], m["prediction"]
    self.num_steps, self.time_scale = m["num_steps"], 1000.0 / m["num_steps"]
    self.net = UNet(spec["shape"][-1], m["channels"], tuple(m["channel_mults"]), m["num_res_blocks"],
                    tuple(m["attention_levels"]), m["num_heads"], m["dropout"], self.num_classes)
    self.net.register_buffer("abar", torch.tensor(alphas_cumprod(m["schedule"], m["num_steps"]), dtype=torch.float32))
    self.finish()

  def loss(self, batch):
    x0 = batch["x"].float() / 127.5 - 1.0  # the 8-bit grid on [-1, 1]
    b = x0.shape[0]
    t = torch.randint(0, self.num_steps, (b,), device=x0.device)
    noise = torch.randn_like(x0)
    abar = self.net.abar[t][:, None, None, None]
    a, s = abar.sqrt(), (1.0 - abar).sqrt()
    xt = a * x0 + s * noise
    label = None
    if self.num_classes:
      drop = torch.rand(b, device=x0.device) < self.p_uncond
      label = torch.where(drop, torch.full_like(batch["label"], self.num_classes), batch["label"])
    out = self.net(xt, t * self.time_scale, label).float()
    target = noise if self.prediction == "eps" else a * noise - s * x0
    return F.mse_loss(out, target)
