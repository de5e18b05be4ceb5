"""Gaussian mixture (diagonal covariances) on Fashion-MNIST (dequantized to [0, 1]; reported in bits/dim).

Full: k-means++ starts (several restarts updated together), then EM on the
60k training images as one batch, freshly dequantized each iteration.
"""

import ml_collections


def get_config(arg="full"):
  if arg not in ("smoke", "full"):
    raise ValueError(f"unknown variant {arg!r}; use smoke or full")
  smoke = arg == "smoke"
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "gmm"
  config.model.num_components = 4 if smoke else 50
  config.model.covariance_type = "diag"
  config.model.num_restarts = 2 if smoke else 3
  # The smoke run refits on a new small batch each step; a larger variance floor keeps
  # the always-black border pixels from dominating its log-likelihood.
  config.model.reg_covar = 1e-3 if smoke else 1e-6
  config.model.lloyd_iters = 3 if smoke else 10

  config.data = ml_collections.ConfigDict()
  config.data.name = "fashion_mnist"
  config.data.batch_size = 1024 if smoke else 60000  # classical fits see the whole training set per step
  config.data.eval_batch_size = 256 if smoke else 10000

  # EM and variational updates need no optimizer, so there is no optim block.

  config.train = ml_collections.ConfigDict()
  config.train.steps = 6 if smoke else 100  # EM iterations
  config.train.seed = 0
  config.train.log_every = 1
  config.train.eval_every = 6 if smoke else 50
  config.train.ckpt_every = 6 if smoke else 50
  config.train.keep = 2
  config.train.sample_num = 16 if smoke else 64

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.fsdp = 1
  return config
