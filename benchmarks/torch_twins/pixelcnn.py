"""Twin of jgen's PixelCNN (`pixelcnn`, categorical head over 256 levels).

A 7x7 mask-A convolution, residual blocks (ReLU, 1x1 -> ReLU, 3x3 -> ReLU, 1x1, all mask B, halving the width
inside), then ReLU, a 1x1 mask-B layer, ReLU, a 1x1 mask-B layer to 256 logits per image channel. A masked
convolution multiplies its weight by the fixed causal mask of jgen.nn.masked (a buffer) every call.
Loss: the 256-way cross-entropy summed over pixels, averaged over the batch (nats per image).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torch_twins.common import Twin, flax_init_, require

LEVELS = 256


def causal_mask(k: int, cin: int, cout: int, channels: int, mask_type: str) -> np.ndarray:
  """jgen.nn.masked.causal_mask, laid out as a torch weight [out, in, kh, kw]."""
  c = k // 2
  mask = np.zeros((cout, cin, k, k), np.float32)
  mask[:, :, :c] = 1.0
  mask[:, :, c, :c] = 1.0
  g_in, g_out = np.arange(cin) * channels // cin, np.arange(cout) * channels // cout
  see = g_in[None, :] < g_out[:, None] if mask_type == "A" else g_in[None, :] <= g_out[:, None]
  mask[:, :, c, c] = see
  return mask


class MaskedConv2d(nn.Conv2d):

  def __init__(self, cin, cout, k, mask_type, channels):
    super().__init__(cin, cout, k, padding=k // 2)
    self.register_buffer("mask", torch.from_numpy(causal_mask(k, cin, cout, channels, mask_type)))

  def forward(self, x):
    return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNNNet(nn.Module):

  def __init__(self, channels, features, num_blocks, out_features):
    super().__init__()
    c, f = channels, features
    self.first = MaskedConv2d(c, f, 7, "A", c)
    self.blocks = nn.ModuleList([nn.ModuleList([MaskedConv2d(f, f // 2, 1, "B", c),
                                                MaskedConv2d(f // 2, f // 2, 3, "B", c),
                                                MaskedConv2d(f // 2, f, 1, "B", c)]) for _ in range(num_blocks)])
    self.hidden = MaskedConv2d(f, f, 1, "B", c)
    self.out = MaskedConv2d(f, out_features, 1, "B", c)

  def forward(self, x):
    h = self.first(x)
    for reduce, conv, expand in self.blocks:
      h = h + expand(F.relu(conv(F.relu(reduce(F.relu(h))))))
    return self.out(F.relu(self.hidden(F.relu(h))))


class PixelCNNTwin(Twin):

  def __init__(self, config, spec, device, dtype="float32", init_batch=None):
    super().__init__(config, spec, device, dtype)
    m = self.model
    require(m, "pixelcnn", name="pixelcnn", head="categorical256", label_conditional=False)
    self.channels = spec["shape"][-1]
    self.net = flax_init_(PixelCNNNet(self.channels, m["features"], m["num_blocks"], self.channels * LEVELS))
    self.finish()

  def loss(self, batch):
    levels = batch["x"].long()  # [B, C, H, W]
    out = self.net(2.0 * batch["x"].float() / (LEVELS - 1) - 1.0)
    b, _, h, w = out.shape
    logits = out.float().view(b, self.channels, LEVELS, h, w).transpose(1, 2)  # one block of 256 per channel
    return F.cross_entropy(logits, levels, reduction="sum") / b
