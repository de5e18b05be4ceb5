"""Bayesian Gaussian mixture on the 8-Gaussians toy with room for 20 components.

A stick-breaking (Dirichlet-process) prior on the weights and a Normal-Wishart prior
on each component; the components the data do not need are pruned to weight ~0.
"""

import ml_collections


def get_config(arg="full"):
  if arg not in ("smoke", "full"):
    raise ValueError(f"unknown variant {arg!r}; use smoke or full")
  smoke = arg == "smoke"
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "bgmm"
  config.model.max_components = 20
  config.model.dirichlet_process = True
  config.model.weight_concentration = 0.0  # 0 means 1 / max_components
  config.model.reg_covar = 0.0
  config.model.lloyd_iters = 10
  config.model.init = "kmeans"

  config.data = ml_collections.ConfigDict()
  config.data.name = "toy2d_8gaussians"
  config.data.batch_size = 512 if smoke else 10000  # classical fits see the whole training set per step
  config.data.eval_batch_size = 512 if smoke else 10000

  # EM and variational updates need no optimizer, so there is no optim block.

  config.train = ml_collections.ConfigDict()
  config.train.steps = 3 if smoke else 200  # EM iterations
  config.train.seed = 0
  config.train.log_every = 1
  config.train.eval_every = 3 if smoke else 100
  config.train.ckpt_every = 3 if smoke else 100
  config.train.keep = 2
  config.train.sample_num = 512 if smoke else 2000

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.fsdp = 1
  return config
