"""What every sequence model shares: p(x) = prod_t p(x_t | x_<t) over a window of token ids, and its sampler.

The network reads the window shifted right by one, behind a begin-of-sequence id
(`vocab_size`, an input-only token), so position t predicts x_t from x_<t and
the first token too is scored: `log_prob` is the exact log-probability of the
whole window, in nats, and bits per character is nll / (T ln 2).

Sampling runs one jitted `lax.fori_loop` over the positions. Each step feeds one
token to the network's `step` (the LSTM's carried state, the transformer's KV
cache, both built here and never stored in the train state), keeps the prompt's
token while inside the prompt and draws the next one after it. With
`cached=False` every step recomputes the full forward pass over the tokens so
far instead: the same distribution, the reference the cache is tested against.

`model.dtype` (jgen.nn.precision) is the networks' compute dtype; the log-softmax and the likelihood are
float32.
"""

import math

import jax
import jax.numpy as jnp

from jgen.families.sequence import sampling
from jgen.family import Family
from jgen.nn.categorical import categorical_log_prob
from jgen.nn.precision import to_float32


class SequenceFamily(Family):
  likelihood = "exact"
  mixed_precision = True
  main_metric = "bits_per_char"
  conditions = ("prompt",)
  sample_options = {"temperature": "model.temperature", "top_k": "model.top_k", "top_p": "model.top_p",
                    "length": "model.sample_length"}

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(temperature=1.0, top_k=0, top_p=1.0, sample_length=256)
    return d

  @classmethod
  def check_model(cls, model):
    if not model.temperature > 0:
      raise ValueError(f"model.temperature={model.temperature}: must be > 0 (lower is greedier)")
    if model.top_k < 0:
      raise ValueError(f"model.top_k={model.top_k}: must be >= 0 (0 keeps every token)")
    if not 0 < model.top_p <= 1:
      raise ValueError(f"model.top_p={model.top_p}: must be in (0, 1] (1 keeps every token)")
    if model.sample_length < 1:
      raise ValueError(f"model.sample_length={model.sample_length}: must be >= 1")

  def __init__(self, config, spec):
    super().__init__(config, spec)
    if spec.kind != "tokens" or not spec.vocab_size:
      raise ValueError(f"{type(self).__name__} models token sequences; the dataset holds {spec.kind}")
    self.vocab_size = spec.vocab_size
    self.bos = spec.vocab_size  # the begin-of-sequence input id

  # ---- what a sequence network offers: __call__(inputs [B, T]) -> logits [B, T, V], and one step at a time ------
  def start(self, model, n: int, length: int):
    """The decoding state of `n` sequences of up to `length` tokens."""
    raise NotImplementedError

  def step(self, model, carry, token, t):
    """Feeds token [n] at position t: (logits [n, V] for position t, new carry)."""
    raise NotImplementedError

  # ---- likelihood ----------------------------------------------------------------------------------------------
  def shifted(self, x):
    """The network's input: BOS, then the window without its last token."""
    return jnp.concatenate([jnp.full((x.shape[0], 1), self.bos, jnp.int32), x[:, :-1].astype(jnp.int32)], axis=1)

  def token_nll(self, model, x):
    """-log p(x_t | x_<t) in nats, [B, T]."""
    logits = to_float32(model(self.shifted(x)))
    return -categorical_log_prob(logits, x)

  def loss(self, model, batch, rng):
    nll = self.token_nll(model, batch["x"])
    per_char = jnp.mean(nll)
    return per_char, {"bits_per_char": per_char / math.log(2.0)}

  def log_density(self, state, x, rng):
    return -jnp.sum(self.token_nll(self.network(state), x), axis=-1)

  def eval_step(self, state, batch, rng):
    nll = -self.log_prob(state, batch["x"], rng)
    return {"nll": nll, "bits_per_char": nll / (batch["x"].shape[-1] * math.log(2.0))}

  # ---- sampling ------------------------------------------------------------------------------------------------
  def sample(self, state, rng, n, cond=None, cached=True):
    """`n` sequences int32 [n, P + model.sample_length]: the prompt `cond["prompt"]` ([P] or [n, P] ids, P may
    be 0) followed by the drawn tokens."""
    m = self.config.model
    prompt = (cond or {}).get("prompt")
    prompt = jnp.zeros((n, 0), jnp.int32) if prompt is None else jnp.asarray(prompt, jnp.int32)
    prompt = jnp.broadcast_to(prompt if prompt.ndim == 2 else prompt[None], (n, prompt.shape[-1]))
    p = prompt.shape[1]
    length = p + m.sample_length
    model = self.network(state)
    tokens = jnp.zeros((n, length), jnp.int32).at[:, :p].set(prompt)

    def next_logits(t, tokens, carry):
      previous = jnp.where(t == 0, self.bos, tokens[:, jnp.maximum(t - 1, 0)])
      if cached:
        return self.step(model, carry, previous, t)
      # Causal, so the logits at t read only tokens < t; the rest of the buffer does not matter.
      return model(self.shifted(tokens))[:, t], carry

    def body(t, loop_state):
      tokens, carry = loop_state
      logits, carry = next_logits(t, tokens, carry)
      drawn = sampling.draw(jax.random.fold_in(rng, t), to_float32(logits), m.temperature, m.top_k, m.top_p)
      return tokens.at[:, t].set(jnp.where(t < p, tokens[:, t], drawn)), carry

    carry = self.start(model, n, length) if cached else ()
    tokens, _ = jax.lax.fori_loop(0, length, body, (tokens, carry))
    return tokens
