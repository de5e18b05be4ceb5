"""Sampling speed with the KV cache (LSTM: carried state) against recomputing the full forward pass every step.

Both samplers are one jitted `lax.fori_loop` and draw the same tokens (tests/test_seq.py); this times them after
compilation on the machine at hand, as a ratio measured in one run.

  python experiments/sequences/bench_sampling.py configs/seq/transformer_fortunes.py:cpu --length 256 --num 8
  python experiments/sequences/bench_sampling.py --workdir runs/seq_transformer_cpu --length 256

Without --workdir the network has its initial weights (the cost of a step does not depend on them).
"""

import argparse
import time

import jax
import jax.numpy as jnp


def _family_and_state(args):
  if args.workdir:
    from jgen.train import checkpoint

    _, family, state = checkpoint.restore_for_inference(args.workdir)
    return family, state
  from jgen import config as config_lib
  from jgen import registry
  from jgen.data.spec import DataSpec

  config = config_lib.load(args.config)
  length = int(config.data.name.partition("@")[2] or 256)
  spec = DataSpec(kind="tokens", shape=(length,), dtype="int32", vocab_size=args.vocab_size, likelihood_space="tokens")
  family = registry.build(config, spec)
  return family, family.init(jax.random.key(0), {k: jnp.asarray(v) for k, v in spec.example_batch(2).items()})


def _time(fn, state, repeats):
  jax.block_until_ready(fn(state, jax.random.key(0)))  # compile
  best = float("inf")
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(state, jax.random.key(i + 1)))
    best = min(best, time.perf_counter() - start)
  return best


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("config", nargs="?", help="CONFIG.py:VARIANT (without --workdir)")
  parser.add_argument("--workdir")
  parser.add_argument("--length", type=int, default=256)
  parser.add_argument("--num", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--vocab-size", type=int, default=115, help="without --workdir (fortunes has 115)")
  args = parser.parse_args()
  family, state = _family_and_state(args)
  family = family.with_overrides(f"model.sample_length={args.length}")
  seconds = {}
  for cached in (True, False):
    fn = jax.jit(lambda s, r, cached=cached: family.sample(s, r, args.num, None, cached=cached))
    seconds[cached] = _time(fn, state, args.repeats)
  tokens = args.num * args.length
  device = jax.devices()[0]
  print(f"{family.config.model.name}, {family.num_params(state):,} parameters, {args.num} x {args.length} tokens on "
        f"{len(jax.devices())}x {device.device_kind} ({device.platform})")
  print(f"cached:    {seconds[True]:.3f} s  {tokens / seconds[True]:,.0f} tokens/s")
  print(f"recompute: {seconds[False]:.3f} s  {tokens / seconds[False]:,.0f} tokens/s")
  print(f"speed-up:  {seconds[False] / seconds[True]:.1f}x")


if __name__ == "__main__":
  main()
