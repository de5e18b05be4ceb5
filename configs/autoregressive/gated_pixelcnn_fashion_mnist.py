"""Gated PixelCNN (vertical and horizontal stacks, no blind spot) on Fashion-MNIST 28x28.

Variants:
  smoke      a tiny network, a few steps, for tests;
  cpu        32 features, 6 gated layers, logistic mixture of 5, batch 32, 6,000 steps: about 30 minutes on
             a 2-core CPU (6 steps/s alone);
  full       64 features, 12 gated layers (kernel 5), logistic mixture of 10, batch 128, 100,000 steps;
  binarized  the `full` network with a Bernoulli head on dynamically binarized images: nats per image on the
             seeded binarized test set the VAE is scored on.

  jgen train configs/autoregressive/gated_pixelcnn_fashion_mnist.py:cpu --workdir runs/gated_pixelcnn_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full", "binarized"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="pixelcnn.gated", head="logistic_mixture", components=2 if smoke else 10,
                 features=8 if smoke else 64, num_blocks=2 if smoke else 12, kernel=3 if smoke else 5,
                 label_conditional=False),
      data=dict(name="fashion_mnist", batch_size=8 if smoke else 128, eval_batch_size=8 if smoke else 500),
      optim=dict(lr=2e-3 if smoke else 5e-4, grad_clip=1.0),
      train=dict(steps=20 if smoke else 100_000, log_every=5 if smoke else 500, eval_every=20 if smoke else 5_000,
                 ckpt_every=10 if smoke else 5_000, keep=2, eval_batches=2 if smoke else 4,
                 sample_num=4 if smoke else 64))
  if variant == "cpu":
    c.model.update(features=32, num_blocks=6, kernel=3, components=5)
    c.data.update(batch_size=32, eval_batch_size=250)
    c.train.update(steps=6_000, log_every=200, eval_every=2_000, ckpt_every=1_000, sample_num=16)
  if variant == "binarized":
    c.model.update(head="bernoulli")
  return c
