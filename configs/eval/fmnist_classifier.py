"""The FID-FMNIST feature network: a small CNN classifier on Fashion-MNIST (test accuracy >= 93 %).

Variants:
  full   six 3x3 convs (16-16, 32-32, 64-64 channels, batch norm, 2x2 max-pool after each
         pair), a 128-unit feature layer with dropout 0.3; random flips and 1-pixel shifts;
         Adam 2e-3 with cosine decay over 8,000 steps of 128 (about 17 epochs).
         One run reaches 93.7-93.8 % on the test set (about 40 min on a 2-core CPU).
  smoke  a few steps, for tests.

  jgen train configs/eval/fmnist_classifier.py:full --workdir runs/fmnist_classifier
  python -m jgen.eval.features runs/fmnist_classifier   # exports it to jgen/assets/
"""

from jgen.config_schema import check_variant, experiment

STEPS = 8000


def get_config(arg: str = "full"):
  smoke = check_variant(arg) == "smoke"
  # Two convs per stage at half the width beat one wide conv at the same cost; with
  # 2-pixel shifts the network underfits in 8,000 steps, with none it overfits.
  c = experiment(
      model=dict(name="classifier.fmnist", channels=(16, 32, 64), convs_per_stage=2, feature_dim=128,
                 num_classes=10, dropout=0.3, augment=True, max_shift=1),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000),
      optim=dict(lr=2e-3, warmup_steps=200, decay="cosine", decay_steps=STEPS),
      train=dict(steps=STEPS, log_every=100, eval_every=1000, ckpt_every=1000, keep=2, sample_num=0))
  if smoke:
    c.data.update(batch_size=32, eval_batch_size=64)
    c.train.update(steps=5, log_every=1, eval_every=5, ckpt_every=5)
    c.optim.update(warmup_steps=1, decay_steps=5)
  return c
