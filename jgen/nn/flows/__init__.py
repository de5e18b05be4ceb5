"""Normalizing-flow layers: invertible maps with tractable log-determinants.

Every layer is a `Bijector` (base.py): `forward(x) -> (z, logdet)` maps data towards the latent and returns
log |det dz/dx| per example; `inverse(z) -> x` undoes it exactly; `initialize(x)` is `forward` that may first
set data-dependent parameters from the batch (ActNorm). One idea per module: coupling, actnorm, invconv,
squeeze, logit, dequantize, multiscale (the composition of levels into one flat latent).
"""
