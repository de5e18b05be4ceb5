"""DDPM (Ho et al.) on Fashion-MNIST: a U-Net on 28x28x1, T = 1000 linear schedule,
epsilon prediction, label-conditional with classifier-free guidance.

Variants:
  smoke  a tiny U-Net, a few steps, for tests;
  cpu    a U-Net sized for a 2-core CPU (32 channels, one residual block per level,
         attention only at 7x7, float32, batch 64, 3,000 steps: about an hour there);
         the run experiments/diffusion reports when no accelerator is at hand;
  full   the reproduction for an accelerator (64 channels, bfloat16 compute with float32
         parameters, 150,000 steps).
"""

import ml_collections


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
  if arg not in ("smoke", "cpu", "full"):
    raise ValueError(f"unknown variant {arg!r}; use 'smoke', 'cpu' or 'full'")
  smoke = arg == "smoke"
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  config.model.name = "ddpm.unet"
  config.model.channels = 16 if smoke else 64
  config.model.channel_mults = (1, 2) if smoke else (1, 2, 2)
  config.model.num_res_blocks = 1 if smoke else 2
  # Level 1 is 14x14 in the full model: attention where it is cheap.
  config.model.attention_levels = (1,)
  config.model.num_heads = 1 if smoke else 4
  config.model.dropout = 0.1
  config.model.schedule = "linear"
  config.model.num_steps = 1000
  config.model.prediction = "eps"
  config.model.variance = "small"
  config.model.clip_x0 = True
  config.model.ema_decay = 0.9999
  config.model.num_classes = 10
  config.model.p_uncond = 0.1
  config.model.guidance = 2.0
  config.model.sampler = "ddim"
  config.model.sample_steps = 5 if smoke else 50
  config.model.ddim_eta = 0.0
  # Training-time evals estimate the bound from 100 stratified timesteps (unbiased, 10x cheaper).
  config.model.bound_timesteps = 4 if smoke else 100
  # `jgen evaluate` (log_prob) sums all T terms of the bound.
  config.model.log_prob_timesteps = 4 if smoke else 0
  config.model.compute_dtype = "float32" if smoke else "bfloat16"

  config.data = ml_collections.ConfigDict()
  config.data.name = "fashion_mnist"
  config.data.batch_size = 8 if smoke else 128
  config.data.eval_batch_size = 8 if smoke else 500

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "adam"
  config.optim.lr = 1e-3 if smoke else 2e-4
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.grad_clip = 1.0
  config.optim.warmup_steps = 0 if smoke else 5_000
  config.optim.decay = "constant"
  config.optim.decay_steps = 1

  config.train = ml_collections.ConfigDict()
  config.train.steps = 20 if smoke else 150_000
  config.train.seed = 0
  config.train.log_every = 5 if smoke else 500
  config.train.eval_every = 10 if smoke else 10_000
  config.train.ckpt_every = 10 if smoke else 10_000
  config.train.keep = 2
  # Training-time evals see 2000 test images; `jgen evaluate` reports the whole split.
  config.train.eval_batches = 2 if smoke else 4
  config.train.sample_num = 8 if smoke else 100

  if arg == "cpu":
    config.model.update(channels=32, num_res_blocks=1, attention_levels=(2,), num_heads=2,
                        compute_dtype="float32", ema_decay=0.999, bound_timesteps=20, log_prob_timesteps=100)
    config.data.update(batch_size=64, eval_batch_size=250)
    config.optim.update(lr=1e-3, warmup_steps=200, decay="cosine", decay_steps=3_000)
    config.train.update(steps=3_000, log_every=100, eval_every=1_000, ckpt_every=500, eval_batches=2,
                        sample_num=100)

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.fsdp = 1
  return config
