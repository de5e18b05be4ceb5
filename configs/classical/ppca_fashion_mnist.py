"""Probabilistic PCA on Fashion-MNIST (dequantized to [0, 1]; reported in bits/dim).

Full: closed-form maximum likelihood on the 60k training images as one batch,
then EM iterations on freshly dequantized copies of it.
"""

import ml_collections


def get_config(arg="full"):
  if arg not in ("smoke", "full"):
    raise ValueError(f"unknown variant {arg!r}; use smoke or full")
  smoke = arg == "smoke"
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "ppca"
  config.model.latent_dim = 8 if smoke else 64
  config.model.init = "random" if smoke else "closed_form"

  config.data = ml_collections.ConfigDict()
  config.data.name = "fashion_mnist"
  config.data.batch_size = 256 if smoke else 60000  # classical fits see the whole training set per step
  config.data.eval_batch_size = 256 if smoke else 10000

  # EM and variational updates need no optimizer, so there is no optim block.

  config.train = ml_collections.ConfigDict()
  config.train.steps = 3 if smoke else 20  # EM iterations
  config.train.seed = 0
  config.train.log_every = 1
  config.train.eval_every = 3 if smoke else 10
  config.train.ckpt_every = 3 if smoke else 10
  config.train.keep = 2
  config.train.sample_num = 16 if smoke else 64

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.fsdp = 1
  return config
