"""Student-t robust PPCA on 2-D toy data with injected gross outliers.

The data layer is asked for 5 % outliers (data.outlier_fraction) drawn uniformly
in a box data.outlier_scale times the data scale; EM then down-weights them.
"""

import ml_collections


def get_config(arg="full"):
  if arg not in ("smoke", "full"):
    raise ValueError(f"unknown variant {arg!r}; use smoke or full")
  smoke = arg == "smoke"
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "robust_ppca"
  config.model.latent_dim = 1
  config.model.nu = 5.0
  config.model.learn_nu = True

  config.data = ml_collections.ConfigDict()
  config.data.name = "toy2d_moons"
  config.data.outlier_fraction = 0.05
  config.data.outlier_scale = 10.0
  config.data.batch_size = 4096 if smoke else 10000  # classical fits see the whole training set per step
  config.data.eval_batch_size = 512 if smoke else 10000

  # EM and variational updates need no optimizer, so there is no optim block.

  config.train = ml_collections.ConfigDict()
  config.train.steps = 8 if smoke else 50  # EM iterations
  config.train.seed = 0
  config.train.log_every = 1
  config.train.eval_every = 8 if smoke else 25
  config.train.ckpt_every = 8 if smoke else 25
  config.train.keep = 2
  config.train.sample_num = 512 if smoke else 2000

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.fsdp = 1
  return config
