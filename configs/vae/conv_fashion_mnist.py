"""Conv VAE on Fashion-MNIST, Bernoulli likelihood on dynamically binarized images.

  jgen train configs/vae/conv_fashion_mnist.py:full --workdir runs/vae_fmnist
"""

import ml_collections


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = dict(name="vae.conv", latent_dim=32, channels=(32, 64), beta=1.0)
  c.data = dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000, source_dir="")
  c.optim = dict(name="adam", lr=1e-3, b1=0.9, b2=0.999, grad_clip=0.0, warmup_steps=0, decay="constant",
                 decay_steps=0)
  c.train = dict(steps=8000, seed=0, log_every=100, eval_every=2000, eval_batches=-1, ckpt_every=1000, keep=3,
                 sample_num=64)
  c.mesh = dict(data=-1, fsdp=1)
  if arg == "smoke":
    c.data.batch_size = 32
    c.data.eval_batch_size = 64
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=2, ckpt_every=20, sample_num=16)
  elif arg != "full":
    raise ValueError(f"unknown variant {arg!r}: use smoke or full")
  return c
