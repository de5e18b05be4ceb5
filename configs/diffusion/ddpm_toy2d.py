"""DDPM with an MLP denoiser on a 2-D toy distribution (two moons by default).

Variants: "smoke" (a few steps, for tests) and "full".
"""

import ml_collections


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
  if arg not in ("smoke", "full"):
    raise ValueError(f"unknown variant {arg!r}; use 'smoke' or 'full'")
  smoke = arg == "smoke"
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "ddpm.mlp"
  config.model.hidden = 64 if smoke else 256
  config.model.depth = 2 if smoke else 3
  config.model.schedule = "linear"
  config.model.num_steps = 1000
  config.model.prediction = "eps"
  # beta_t as the reverse variance: the better fixed choice for continuous data.
  config.model.variance = "large"
  config.model.ema_decay = 0.999
  config.model.num_classes = 0
  config.model.p_uncond = 0.0
  config.model.guidance = 1.0
  config.model.sampler = "ddim"
  config.model.sample_steps = 50
  config.model.ddim_eta = 0.0
  config.model.bound_timesteps = 50 if smoke else 0
  config.model.log_prob_timesteps = 50 if smoke else 0
  config.model.compute_dtype = "float32"

  config.data = ml_collections.ConfigDict()
  config.data.name = "toy2d_moons"
  config.data.batch_size = 64 if smoke else 512
  config.data.eval_batch_size = 256 if smoke else 2000

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "adam"
  config.optim.lr = 1e-3
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.grad_clip = 1.0
  config.optim.warmup_steps = 0 if smoke else 200
  config.optim.decay = "constant" if smoke else "cosine"
  config.optim.decay_steps = 20 if smoke else 20_000

  config.train = ml_collections.ConfigDict()
  config.train.steps = 20 if smoke else 20_000
  config.train.seed = 0
  config.train.log_every = 5 if smoke else 200
  config.train.eval_every = 10 if smoke else 2_000
  config.train.ckpt_every = 10 if smoke else 5_000
  config.train.keep = 2
  config.train.eval_batches = 2 if smoke else -1  # -1: the whole evaluation split
  config.train.sample_num = 256 if smoke else 2_000

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.fsdp = 1
  return config
