"""Deterministic conv autoencoder on Fashion-MNIST: the VAE's networks without the KL or the prior.

Shown beside the VAE (experiments/vae): its codes reconstruct well, but decoding z ~ N(0, I) gives poor images,
since nothing ties its codes to a prior. Variants as in conv_fashion_mnist.py.

  jgen train configs/vae/ae_fashion_mnist.py:full --workdir runs/ae_fmnist
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  c = experiment(
      model=dict(name="ae.conv", latent_dim=32, channels=(32, 64)),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000),
      optim=dict(lr=1e-3),
      train=dict(steps=40_000, log_every=500, eval_every=4_000, ckpt_every=4_000, keep=2, sample_num=64))
  if variant == "cpu":
    c.train.update(steps=8_000, log_every=100, eval_every=2_000, ckpt_every=1_000)
  if variant == "smoke":
    c.data.update(batch_size=32, eval_batch_size=64)
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=2, ckpt_every=20, sample_num=16)
  return c
