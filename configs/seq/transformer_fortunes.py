"""A causal character transformer (pre-norm, rotary positions, tied embeddings) on the fortunes corpus.

The exact likelihood of windows of characters; bits/char = nll / (T ln 2), T the window length
(`fortunes@T`).

Variants:
  smoke  a tiny network on 32-character windows, a few steps, for tests;
  cpu    4 layers x 128 wide (0.8 M parameters), 128-character windows, batch 32, 4,000 steps: 48 minutes
         on the shared 2-core CPU next to the LSTM's cpu run (experiments/sequences);
  full   6 layers x 384 wide (10.7 M parameters), 256-character windows, batch 64: the accelerator run.

  jgen train configs/seq/transformer_fortunes.py:cpu --workdir runs/seq_transformer_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="seq.transformer", embed_dim=16 if smoke else 384, num_heads=2 if smoke else 6,
                 num_layers=1 if smoke else 6, sample_length=32 if smoke else 256),
      data=dict(name="fortunes@32" if smoke else "fortunes@256", batch_size=8 if smoke else 64,
                eval_batch_size=8 if smoke else 256),
      optim=dict(name="adamw", lr=3e-3 if smoke else 6e-4, weight_decay=0.1, grad_clip=1.0,
                 warmup_steps=0 if smoke else 1_000, decay="constant" if smoke else "cosine",
                 decay_steps=0 if smoke else 30_000),
      train=dict(steps=20 if smoke else 30_000, log_every=5 if smoke else 500, eval_every=20 if smoke else 3_000,
                 ckpt_every=10 if smoke else 3_000, keep=2, eval_batches=2 if smoke else -1,
                 sample_num=4 if smoke else 16))
  if variant == "cpu":
    c.model.update(embed_dim=128, num_heads=4, num_layers=4, sample_length=200)
    c.data.update(name="fortunes@128", batch_size=32, eval_batch_size=256)
    c.optim.update(lr=1e-3, warmup_steps=200, decay_steps=4_000)
    c.train.update(steps=4_000, log_every=100, eval_every=1_000, ckpt_every=500)
  return c
