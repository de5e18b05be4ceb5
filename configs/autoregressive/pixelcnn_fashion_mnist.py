"""PixelCNN (masked convolutions, masks A/B, 5 residual blocks) on Fashion-MNIST 28x28, 256 levels.

The exact likelihood of the 8-bit pixels (softmax over 256 levels), bits/dim = nll / (784 ln 2).

Variants:
  smoke  a tiny network, a few steps, for tests;
  cpu    32 features, batch 32, 12,000 steps: about 30 minutes on a 2-core CPU (15 steps/s alone);
  full   128 features (the book's model), batch 128, 50,000 steps: the accelerator run.

  jgen train configs/autoregressive/pixelcnn_fashion_mnist.py:cpu --workdir runs/pixelcnn_fmnist_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="pixelcnn", head="categorical256", features=8 if smoke else 128, num_blocks=1 if smoke else 5),
      data=dict(name="fashion_mnist", batch_size=8 if smoke else 128, eval_batch_size=8 if smoke else 500),
      optim=dict(lr=2e-3 if smoke else 5e-4, grad_clip=1.0),
      train=dict(steps=20 if smoke else 50_000, log_every=5 if smoke else 500, eval_every=20 if smoke else 5_000,
                 ckpt_every=10 if smoke else 5_000, keep=2, eval_batches=2 if smoke else 4,
                 sample_num=4 if smoke else 64))
  if variant == "cpu":
    c.model.update(features=32)
    c.data.update(batch_size=32, eval_batch_size=250)
    c.train.update(steps=12_000, log_every=200, eval_every=2_000, ckpt_every=1_000, sample_num=16)
  return c
