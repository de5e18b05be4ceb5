"""Twin of jgen's conv VAE (`vae.conv`, arch "conv", Bernoulli decoder, the ELBO).

Encoder: stride-2 4x4 convolutions with ReLU, then a linear head to (mean, log-variance). Decoder: linear to
the smallest map, ReLU, stride-2 4x4 transposed convolutions with ReLU between them (nn.ConvTranspose2d,
padding 1: the same doubling as jgen's "SAME" transposed convolution). Images are binarized afresh each step.
"""

import torch
import torch.nn.functional as F
from torch import nn

from torch_twins.common import Twin, flax_init_, require


class ConvVAE(nn.Module):

  def __init__(self, image_shape, channels, latent_dim):
    super().__init__()
    h, w, c = image_shape
    levels = len(channels)
    bh, bw = h // 2**levels, w // 2**levels
    layers, cin = [], c
    for cout in channels:
      layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.ReLU()]
      cin = cout
    self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(bh * bw * channels[-1], 2 * latent_dim))
    rev = list(reversed(channels))
    layers = [nn.Linear(latent_dim, bh * bw * rev[0]), nn.Unflatten(1, (rev[0], bh, bw)), nn.ReLU()]
    outs = rev[1:] + [c]
    for k, (cin, cout) in enumerate(zip(rev, outs)):
      layers.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
      if k < len(outs) - 1:
        layers.append(nn.ReLU())
    self.decoder = nn.Sequential(*layers)


class VAETwin(Twin):

  def __init__(self, config, spec, device, dtype="float32", init_batch=None):
    super().__init__(config, spec, device, dtype)
    m = self.model
    require(m, "vae.conv", arch="conv", decoder="bernoulli", objective="elbo", num_samples=1, kl_warmup_steps=0)
    self.beta = m["beta"]
    self.net = flax_init_(ConvVAE(spec["shape"], list(m["channels"]), m["latent_dim"]))
    self.finish()

  def loss(self, batch):
    x = torch.bernoulli(batch["x"].float() / 255.0)  # dynamic binarization, as jgen's "binary" space
    mean, logvar = self.net.encoder(x).chunk(2, dim=-1)
    logvar = logvar.clamp(-12.0, 8.0)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    logits = self.net.decoder(z).float()
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3))
    kl = 0.5 * torch.sum(torch.exp(logvar) + mean**2 - 1.0 - logvar, dim=-1)
    return torch.mean(recon + self.beta * kl)
