"""Conv VAE on Fashion-MNIST, Bernoulli likelihood on dynamically binarized images.

  jgen train configs/vae/conv_fashion_mnist.py:full --workdir runs/vae_fmnist
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  smoke = check_variant(arg) == "smoke"
  c = experiment(
      model=dict(name="vae.conv", latent_dim=32, channels=(32, 64), beta=1.0),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000),
      optim=dict(lr=1e-3),
      train=dict(steps=8000, log_every=100, eval_every=2000, ckpt_every=1000, sample_num=64))
  if smoke:
    c.data.update(batch_size=32, eval_batch_size=64)
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=2, ckpt_every=20, sample_num=16)
  return c
