"""The VAE family: the deterministic autoencoder, the VAE (beta-VAE, KL warm-up, IWAE training), the conditional
VAE; conv or residual networks; a Bernoulli decoder for binarized images or a discretized logistic mixture for
8-bit images."""

from jgen.families.vae.autoencoder import Autoencoder  # noqa: E402,F401  (registers ae.conv)
from jgen.families.vae.cvae import ConditionalVAE  # noqa: E402,F401  (registers vae.cvae)
from jgen.families.vae.vae import VAE, gaussian_kl  # noqa: E402,F401  (registers vae.conv)
