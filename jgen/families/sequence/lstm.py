"""seq.lstm: embedding, stacked LSTM, softmax head over the vocabulary.

model: embed_dim, hidden_dim, num_layers; sampling: temperature, top_k, top_p, sample_length.
Each layer's input projection runs over the whole window in one matmul; the
`lax.scan` over time carries only the recurrent one (the slow, sequential part
on a CPU). Sampling feeds the same cell one token at a time with its carried state.
In bfloat16 (`model.dtype`) the embedding and both matmuls of every step are bfloat16; the gates and the
carried (c, h) stay float32, so rounding does not build up along the sequence.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jgen.families.sequence.family import SequenceFamily
from jgen.registry import register


def lstm_update(carry, projected, kernel):
  """One time step: (c, h) and the projected input -> (c, h); the recurrent matmul in the kernel's dtype."""
  c, h = carry
  gates = projected.astype(jnp.float32) + (h.astype(kernel.dtype) @ kernel).astype(jnp.float32)
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return c, jax.nn.sigmoid(o) * jnp.tanh(c)


class LSTMLayer(nnx.Module):
  """gates = W x + U h + b in the order input, forget, cell, output; forget bias starts at 1."""

  def __init__(self, in_features, hidden, *, dtype=jnp.float32, rngs):
    self.hidden = hidden
    self.dtype = dtype
    self.inp = nnx.Linear(in_features, 4 * hidden, dtype=dtype, rngs=rngs,
                          bias_init=lambda key, shape, dtype: jnp.zeros(shape, dtype).at[hidden:2 * hidden].set(1.0))
    self.rec = nnx.Linear(hidden, 4 * hidden, use_bias=False, kernel_init=nnx.initializers.orthogonal(), rngs=rngs)

  def cell(self, carry, x):
    """One time step of input x [n, in]: (c, h) -> (c, h)."""
    return lstm_update(carry, self.inp(x), self.rec.kernel[...].astype(self.dtype))

  def __call__(self, x):
    """x [B, T, in] -> hidden states [B, T, hidden] (float32), from a zero state."""
    zeros = jnp.zeros((x.shape[0], self.hidden), jnp.float32)
    kernel = self.rec.kernel[...].astype(self.dtype)

    def scan_step(carry, projected):  # the kernel enters the scan as a plain array
      carry = lstm_update(carry, projected, kernel)
      return carry, carry[1]

    _, hs = jax.lax.scan(scan_step, (zeros, zeros), jnp.swapaxes(self.inp(x), 0, 1))
    return jnp.swapaxes(hs, 0, 1)


class LSTMNet(nnx.Module):

  def __init__(self, vocab_size, embed_dim, hidden_dim, num_layers, *, dtype=jnp.float32, rngs):
    self.embed = nnx.Embed(vocab_size + 1, embed_dim, dtype=dtype, rngs=rngs)  # + the begin-of-sequence id
    self.layers = nnx.List([LSTMLayer(embed_dim if i == 0 else hidden_dim, hidden_dim, dtype=dtype, rngs=rngs)
                            for i in range(num_layers)])
    self.head = nnx.Linear(hidden_dim, vocab_size, dtype=dtype, rngs=rngs)

  def __call__(self, tokens):
    h = self.embed(tokens)
    for layer in self.layers:
      h = layer(h)
    return self.head(h)

  def step(self, carry, token):
    """token [n] -> (logits [n, V], carry): one position, every layer's (c, h) carried."""
    h, new = self.embed(token), []
    for layer, state in zip(self.layers, carry):
      state = layer.cell(state, h)
      new.append(state)
      h = state[1]
    return self.head(h), tuple(new)


@register("seq.lstm", family="autoregressive")
class SeqLSTM(SequenceFamily):
  """A character-level stacked LSTM language model."""

  @classmethod
  def defaults(cls):
    d = super().defaults()
    d.model.update(embed_dim=64, hidden_dim=256, num_layers=2)
    return d

  def make_networks(self, rngs):
    m = self.config.model
    return {"model": LSTMNet(self.vocab_size, m.embed_dim, m.hidden_dim, m.num_layers, dtype=self.compute_dtype,
                             rngs=rngs)}

  def start(self, model, n, length):
    zeros = jnp.zeros((n, self.config.model.hidden_dim), jnp.float32)
    return tuple((zeros, zeros) for _ in range(self.config.model.num_layers))

  def step(self, model, carry, token, t):
    return model.step(carry, token)
