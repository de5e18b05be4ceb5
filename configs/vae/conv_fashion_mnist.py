"""Conv VAE on Fashion-MNIST, Bernoulli likelihood on dynamically binarized images.

Variants:
  smoke     a few steps, for tests;
  cpu       8,000 steps of 128 (about 20 epochs of the 50,000 training images) on a 2-core CPU;
  full      40,000 steps of 128 (about 100 epochs), the accelerator run;
  logistic  the `full` run with a discretized logistic mixture decoder (5 components) on the 8-bit images,
            reported in bits/dim.
Checkpoints are ranked by the validation ELBO (the last 10,000 training images); `jgen evaluate` scores the
test split once.

  jgen train configs/vae/conv_fashion_mnist.py:full --workdir runs/vae_fmnist
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full", "logistic"))
  c = experiment(
      model=dict(name="vae.conv", latent_dim=32, channels=(32, 64), beta=1.0),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000),
      optim=dict(lr=1e-3),
      train=dict(steps=40_000, log_every=500, eval_every=4_000, ckpt_every=4_000, keep=2, sample_num=64))
  if variant == "cpu":
    c.train.update(steps=8_000, log_every=100, eval_every=2_000, ckpt_every=1_000)
  if variant == "logistic":
    c.model.update(decoder="logistic", decoder_components=5)
  if variant == "smoke":
    c.data.update(batch_size=32, eval_batch_size=64)
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=2, ckpt_every=20, sample_num=16)
  return c
