"""Glow (Kingma & Dhariwal 2018): `num_scales` levels of squeeze, then `num_steps` steps of
ActNorm -> invertible 1x1 convolution (LU) -> affine channel coupling, half the channels factored out after
each level but the last, with a learned conditional prior. The sigmoid scale by default. On points the
same steps without squeezes (the 1x1 convolution is an invertible dense layer).
"""

import functools

from jgen.families.flow.family import FlowFamily
from jgen.nn.flows.actnorm import ActNorm
from jgen.nn.flows.base import Chain
from jgen.nn.flows.coupling import Coupling
from jgen.nn.flows.invconv import InvConv1x1
from jgen.nn.flows.multiscale import Level, SplitPrior
from jgen.nn.flows.squeeze import Squeeze
from jgen.registry import register


@register("flow.glow", family="normalizing flow")
class Glow(FlowFamily):

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(num_steps=8, features=128, scale="sigmoid", actnorm=True, learned_split_prior=True)
    return d

  def check_shape(self):
    if self.is_image:
      m, (h, w, _) = self.config.model, self.spec.shape
      f = 2 ** m.num_scales
      if h % f or w % f:
        raise ValueError(f"model.num_scales={m.num_scales}: Glow squeezes at every scale, so the image sides "
                         f"({h}x{w}) must be divisible by {f}; use fewer scales")

  def build_levels(self, rngs):
    m = self.config.model
    coupling = functools.partial(Coupling, mask="channel", parity=0, kind=m.coupling, scale=m.scale,
                                 features=m.features, num_blocks=m.num_blocks, dtype=self.net_dtype,
                                 rngs=rngs)
    seeds = iter(range(10**6))  # each 1x1 convolution starts from its own random rotation

    def steps(shape):
      return [layer for _ in range(m.num_steps)
              for layer in ([ActNorm(shape[-1])] if m.actnorm else []) + [InvConv1x1(shape[-1], next(seeds)),
                                                                         coupling(shape)]]

    if not self.is_image:
      return [Level(Chain(steps(self.spec.shape)), factor=False)], [self.spec.shape]
    levels, latent_shapes = [], []
    h, w, c = self.spec.shape
    for i in range(m.num_scales):
      h, w, c = h // 2, w // 2, 4 * c
      layers = [Squeeze()] + steps((h, w, c))
      if i == m.num_scales - 1:
        levels.append(Level(Chain(layers), factor=False))
        break
      kept = c // 2
      prior = SplitPrior(kept, c - kept, rngs=rngs) if m.learned_split_prior else None
      levels.append(Level(Chain(layers), factor=True, prior=prior))
      latent_shapes.append((h, w, c - kept))
      c = kept
    return levels, latent_shapes + [(h, w, c)]
