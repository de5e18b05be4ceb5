"""Probabilistic PCA on Fashion-MNIST (dequantized to [0, 1]; reported in bits/dim).

Full: closed-form maximum likelihood on the 50k training images (the last 10k of
train are validation) as one batch, then EM iterations on freshly dequantized copies.
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg="full"):
  smoke = check_variant(arg) == "smoke"
  return experiment(
      model=dict(name="ppca", latent_dim=8 if smoke else 64, init="random" if smoke else "closed_form"),
      data=dict(name="fashion_mnist", batch_size=256 if smoke else 50000, eval_batch_size=256 if smoke else 10000),
      train=dict(steps=3 if smoke else 20, log_every=1, eval_every=3 if smoke else 10,
                 ckpt_every=3 if smoke else 10, keep=2, sample_num=16 if smoke else 64))
