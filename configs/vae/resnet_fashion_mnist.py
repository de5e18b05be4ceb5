"""Residual VAE on Fashion-MNIST: the paper-protocol likelihood model of the VAE family.

Protocol (Exemplar VAE / VampPrior tables, dynamically binarized Fashion-MNIST): train on the first 50,000
training images, dynamically binarized; early-stop on the last 10,000 (validation ELBO, every eval step);
score the test split once, binarized with a fixed seed, by IWAE with 5,000 samples on all 10,000 images:

  jgen train configs/vae/resnet_fashion_mnist.py:full --workdir runs/resvae
  jgen evaluate --workdir runs/resvae --checkpoint best --metrics nll,iwae --iwae-samples 5000

Variants:
  smoke     a tiny network, a few steps, for tests;
  cpu       the same network, 6,000 steps of 64 on a 2-core CPU;
  full      40,000 steps of 128 (about 100 epochs), the accelerator run;
  logistic  the `full` run with a discretized logistic mixture decoder on the 8-bit images (bits/dim).
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full", "logistic"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="vae.conv", arch="resnet", latent_dim=8 if smoke else 32,
                 channels=(8, 16) if smoke else (32, 64), blocks=1 if smoke else 2),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000),
      optim=dict(lr=1e-3, grad_clip=100.0, decay="cosine", decay_steps=40_000),
      train=dict(steps=40_000, log_every=500, eval_every=2_000, ckpt_every=2_000, keep=2, sample_num=64))
  if variant == "cpu":
    c.data.update(batch_size=64)
    c.optim.update(decay_steps=6_000)
    c.train.update(steps=6_000, log_every=100, eval_every=1_000, ckpt_every=1_000)
  if variant == "logistic":
    c.model.update(decoder="logistic", decoder_components=5)
  if smoke:
    c.data.update(batch_size=32, eval_batch_size=64)
    c.optim.update(decay_steps=40)
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=2, ckpt_every=20, sample_num=16)
  return c
