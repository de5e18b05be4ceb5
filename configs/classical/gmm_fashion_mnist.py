"""Gaussian mixture (diagonal covariances) on Fashion-MNIST (dequantized to [0, 1]; reported in bits/dim).

Full: k-means++ starts (several restarts updated together), then EM on the
50k training images (the last 10k of train are validation) as one batch,
freshly dequantized each iteration.
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg="full"):
  smoke = check_variant(arg) == "smoke"
  return experiment(
      model=dict(name="gmm", num_components=4 if smoke else 50, covariance_type="diag",
                 num_restarts=2 if smoke else 3,
                 # The smoke run refits on a new small batch each step; a larger variance floor keeps
                 # the always-black border pixels from dominating its log-likelihood.
                 reg_covar=1e-3 if smoke else 1e-6, lloyd_iters=3 if smoke else 10),
      data=dict(name="fashion_mnist", batch_size=1024 if smoke else 50000, eval_batch_size=256 if smoke else 10000),
      train=dict(steps=6 if smoke else 100, log_every=1, eval_every=6 if smoke else 50,
                 ckpt_every=6 if smoke else 50, keep=2, sample_num=16 if smoke else 64))
