"""RealNVP (Dinh et al. 2017): affine couplings with alternating masks.

Points: `num_steps` couplings, each changing one half of the coordinates given the other (alternating), MLP
networks. Images, `num_scales` levels: at each but the last, `num_steps` checkerboard couplings, a squeeze,
`num_steps` channel couplings, then half the channels factored out; the last level is `num_steps + 1`
checkerboard couplings. Defaults follow the paper: the tanh-bounded scale, a standard normal latent,
no ActNorm (which `actnorm` adds before every coupling).
"""

import functools

from jgen.families.flow.family import FlowFamily
from jgen.nn.flows.actnorm import ActNorm
from jgen.nn.flows.base import Chain
from jgen.nn.flows.coupling import Coupling
from jgen.nn.flows.multiscale import Level, SplitPrior
from jgen.nn.flows.squeeze import Squeeze
from jgen.registry import register


@register("flow.realnvp", family="normalizing flow")
class RealNVP(FlowFamily):

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(num_steps=3, scale="tanh", actnorm=False, learned_split_prior=False)
    return d

  def check_shape(self):
    if self.is_image:
      m, (h, w, _) = self.config.model, self.spec.shape
      f = 2 ** (m.num_scales - 1)
      if h % f or w % f:
        raise ValueError(f"model.num_scales={m.num_scales}: RealNVP squeezes {m.num_scales - 1} times, so the image "
                         f"sides ({h}x{w}) must be divisible by {f}; use fewer scales")

  def build_levels(self, rngs):
    m = self.config.model
    coupling = functools.partial(Coupling, kind=m.coupling, scale=m.scale, features=m.features,
                                 num_blocks=m.num_blocks, dtype=self.net_dtype, rngs=rngs)

    def couplings(shape, mask, count):
      return [layer for i in range(count)
              for layer in ([ActNorm(shape[-1])] if m.actnorm else []) + [coupling(shape, mask, i)]]

    if not self.is_image:
      return [Level(Chain(couplings(self.spec.shape, "channel", m.num_steps)), factor=False)], [self.spec.shape]
    levels, latent_shapes = [], []
    h, w, c = self.spec.shape
    for i in range(m.num_scales - 1):
      layers = couplings((h, w, c), "checkerboard", m.num_steps) + [Squeeze()]
      h, w, c = h // 2, w // 2, 4 * c
      layers += couplings((h, w, c), "channel", m.num_steps)
      kept = c // 2
      prior = SplitPrior(kept, c - kept, rngs=rngs) if m.learned_split_prior else None
      levels.append(Level(Chain(layers), factor=True, prior=prior))
      latent_shapes.append((h, w, c - kept))
      c = kept
    levels.append(Level(Chain(couplings((h, w, c), "checkerboard", m.num_steps + 1)), factor=False))
    return levels, latent_shapes + [(h, w, c)]
