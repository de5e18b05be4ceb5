"""A character LSTM (embedding, stacked LSTM, softmax head) on the fortunes corpus.

The exact likelihood of windows of characters; bits/char = nll / (T ln 2), T the window length
(`fortunes@T`). The sizes match the transformer of transformer_fortunes.py in parameters.

Variants:
  smoke  a tiny network on 32-character windows, a few steps, for tests;
  cpu    2 layers x 240 (0.8 M parameters), 128-character windows, batch 32, 4,000 steps: 35 minutes
         on the shared 2-core CPU next to the transformer's cpu run (experiments/sequences);
  full   3 layers x 720 (10.8 M parameters), 256-character windows, batch 64: the accelerator run.

  jgen train configs/seq/lstm_fortunes.py:cpu --workdir runs/seq_lstm_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="seq.lstm", embed_dim=8 if smoke else 128, hidden_dim=32 if smoke else 720,
                 num_layers=1 if smoke else 3, sample_length=32 if smoke else 256),
      data=dict(name="fortunes@32" if smoke else "fortunes@256", batch_size=8 if smoke else 64,
                eval_batch_size=8 if smoke else 256),
      optim=dict(lr=3e-3 if smoke else 2e-3, grad_clip=1.0, decay="constant" if smoke else "cosine",
                 decay_steps=0 if smoke else 30_000),
      train=dict(steps=20 if smoke else 30_000, log_every=5 if smoke else 500, eval_every=20 if smoke else 3_000,
                 ckpt_every=10 if smoke else 3_000, keep=2, eval_batches=2 if smoke else -1,
                 sample_num=4 if smoke else 16))
  if variant == "cpu":
    c.model.update(embed_dim=64, hidden_dim=240, num_layers=2, sample_length=200)
    c.data.update(name="fortunes@128", batch_size=32, eval_batch_size=256)
    c.optim.update(decay_steps=4_000)
    c.train.update(steps=4_000, log_every=100, eval_every=1_000, ckpt_every=500)
  return c
