"""Twin of jgen's DCGAN (`gan.dcgan`): the generator and discriminator of jgen.families.gan.networks and one
step of one discriminator update then one generator update, non-saturating loss, generator EMA.

Generator: linear (no bias) to the smallest map, batch norm + ReLU, then per level an upsampling (nearest x2 +
3x3 conv, or a stride-2 4x4 nn.ConvTranspose2d), batch norm + ReLU after every hidden layer (no bias before a
batch norm), tanh. Discriminator: stride-2 4x4 convolutions with leaky ReLU 0.2, a linear head.
"""

import torch
import torch.nn.functional as F
from torch import nn

from torch_twins.common import Twin, Updater, flax_init_, require


class Generator(nn.Module):

  def __init__(self, latent_dim, image_shape, channels, upsample):
    super().__init__()
    h, w, c = image_shape
    levels = len(channels)
    self.base = (channels[0], h // 2**levels, w // 2**levels)
    self.dense = nn.Linear(latent_dim, self.base[0] * self.base[1] * self.base[2], bias=False)
    self.norm0 = nn.BatchNorm2d(channels[0], momentum=0.1)  # flax momentum 0.9 is torch's 0.1
    outs = list(channels[1:]) + [c]
    ups, norms = [], []
    for k, (cin, cout) in enumerate(zip(channels, outs)):
      bias = k == len(outs) - 1
      if upsample == "nearest":
        ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(cin, cout, 3, padding=1, bias=bias)))
      else:
        ups.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias))
      if not bias:
        norms.append(nn.BatchNorm2d(cout, momentum=0.1))
    self.ups, self.norms = nn.ModuleList(ups), nn.ModuleList(norms)

  def forward(self, z):
    x = F.relu(self.norm0(self.dense(z).view(z.shape[0], *self.base)))
    for k, up in enumerate(self.ups):
      x = up(x)
      if k < len(self.norms):
        x = F.relu(self.norms[k](x))
    return torch.tanh(x)


class Discriminator(nn.Module):

  def __init__(self, image_shape, channels, norm):
    super().__init__()
    h, w, c = image_shape
    levels = len(channels)
    layers, cin = [], c
    for k, cout in enumerate(channels):
      layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1))
      if norm == "layer" and k > 0:
        layers.append(nn.GroupNorm(1, cout, eps=1e-6))
      layers.append(nn.LeakyReLU(0.2))
      cin = cout
    self.features = nn.Sequential(*layers, nn.Flatten())
    self.head = nn.Linear((h // 2**levels) * (w // 2**levels) * channels[-1], 1)

  def forward(self, x):
    return self.head(self.features(x))[:, 0]


class Nets(nn.Module):
  def __init__(self, gen, disc):
    super().__init__()
    self.gen, self.disc = gen, disc


class DCGANTwin(Twin):

  def __init__(self, config, spec, device, dtype="float32", init_batch=None):
    super().__init__(config, spec, device, dtype)
    m = self.model
    require(m, "gan.dcgan", name="gan.dcgan", loss="ns", penalty="none", spectral_norm=False)
    self.latent_dim, self.smoothing = m["latent_dim"], m["label_smoothing"]
    self.net = Nets(flax_init_(Generator(m["latent_dim"], spec["shape"], list(m["gen_channels"]), m["upsample"])),
                    flax_init_(Discriminator(spec["shape"], list(m["disc_channels"]), m["disc_norm"])))
    self.net.to(self.device).train()
    self.updaters = {"gen": Updater(self.net.gen, self.optim["gen"]),
                     "disc": Updater(self.net.disc, self.optim["disc"])}
    self.gen_params = list(self.net.gen.parameters())
    self.d_loss_fn, self.g_loss_fn = self.d_loss, self.g_loss

  def compile(self):
    self.d_loss_fn, self.g_loss_fn = torch.compile(self.d_loss), torch.compile(self.g_loss)

  def d_loss(self, x):
    real = x.float() / 127.5 - 1.0
    with torch.no_grad():  # the generator in train mode (batch statistics), no gradient
      fake = self.net.gen(torch.randn(real.shape[0], self.latent_dim, device=real.device))
    real_logits, fake_logits = self.net.disc(real).float(), self.net.disc(fake).float()
    t = 1.0 - self.smoothing
    return torch.mean(t * F.softplus(-real_logits) + (1.0 - t) * F.softplus(real_logits) + F.softplus(fake_logits))

  def g_loss(self, n: int):
    z = torch.randn(n, self.latent_dim, device=self.device)
    return torch.mean(F.softplus(-self.net.disc(self.net.gen(z)).float()))

  def step(self, batch):
    self.count += 1
    d, g = self.updaters["disc"], self.updaters["gen"]
    d.zero_grad()
    with self.precision():
      d_loss = self.d_loss_fn(batch["x"])
    d_loss.backward()
    d.step(self.count)
    g.zero_grad()
    with self.precision():
      g_loss = self.g_loss_fn(batch["x"].shape[0])
    g_loss.backward(inputs=self.gen_params)  # the generator's gradients only, as jax.grad w.r.t. its params
    g.step(self.count)
    return (d_loss + g_loss).detach()
