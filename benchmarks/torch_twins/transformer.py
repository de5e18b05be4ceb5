"""Twin of jgen's causal character transformer (`seq.transformer`).

Pre-norm blocks (LayerNorm -> qkv linear without bias -> rotary positions on q and k ->
F.scaled_dot_product_attention(is_causal=True) -> projection; LayerNorm -> linear -> tanh-approximated GELU, as
jax.nn.gelu -> linear), a final LayerNorm, logits through the tied token embedding (its extra
begin-of-sequence row is input-only). Loss: mean cross-entropy per token of the window, read shifted right
behind the begin-of-sequence id.
"""

import torch
import torch.nn.functional as F
from torch import nn

from torch_twins.common import Twin, flax_init_, require

ROTARY_BASE = 10_000.0


def rotary(x, cos, sin):
  """x [B, T, H, d]: pairs (x_i, x_{i + d/2}) rotated by position * base^(-2i/d)."""
  half = x.shape[-1] // 2
  x1, x2 = x[..., :half], x[..., half:]
  return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):

  def __init__(self, dim, heads, mlp_ratio):
    super().__init__()
    self.heads = heads
    self.norm1 = nn.LayerNorm(dim, eps=1e-6)
    self.qkv = nn.Linear(dim, 3 * dim, bias=False)
    self.proj = nn.Linear(dim, dim)
    self.norm2 = nn.LayerNorm(dim, eps=1e-6)
    self.fc1 = nn.Linear(dim, mlp_ratio * dim)
    self.fc2 = nn.Linear(mlp_ratio * dim, dim)

  def forward(self, h, cos, sin):
    b, t, d = h.shape
    q, k, v = self.qkv(self.norm1(h)).view(b, t, 3 * self.heads, d // self.heads).chunk(3, dim=2)
    q, k = rotary(q, cos, sin), rotary(k, cos, sin)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
    h = h + self.proj(out.transpose(1, 2).reshape(b, t, d))
    return h + self.fc2(F.gelu(self.fc1(self.norm2(h)), approximate="tanh"))


class TransformerNet(nn.Module):

  def __init__(self, vocab_size, dim, heads, num_layers, mlp_ratio, tie_embeddings):
    super().__init__()
    self.vocab_size, self.half = vocab_size, dim // heads // 2
    self.embed = nn.Embedding(vocab_size + 1, dim)
    self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(num_layers)])
    self.norm = nn.LayerNorm(dim, eps=1e-6)
    self.head = None if tie_embeddings else nn.Linear(dim, vocab_size)
    flax_init_(self)
    nn.init.normal_(self.embed.weight, std=0.02)

  def forward(self, tokens):
    t = tokens.shape[1]
    freqs = ROTARY_BASE ** (-torch.arange(self.half, device=tokens.device, dtype=torch.float32) / self.half)
    angles = torch.arange(t, device=tokens.device, dtype=torch.float32)[:, None] * freqs  # [T, d/2]
    cos, sin = torch.cos(angles)[None, :, None, :], torch.sin(angles)[None, :, None, :]
    h = self.embed(tokens)
    for block in self.blocks:
      h = block(h, cos, sin)
    h = self.norm(h)
    return self.head(h) if self.head is not None else F.linear(h, self.embed.weight[:self.vocab_size])


class TransformerTwin(Twin):

  def __init__(self, config, spec, device, dtype="float32", init_batch=None):
    super().__init__(config, spec, device, dtype)
    m = self.model
    require(m, "seq.transformer", name="seq.transformer")
    self.bos = spec["vocab_size"]
    self.net = TransformerNet(spec["vocab_size"], m["embed_dim"], m["num_heads"], m["num_layers"], m["mlp_ratio"],
                              m["tie_embeddings"])
    self.finish()

  def loss(self, batch):
    x = batch["x"]
    inputs = torch.cat([torch.full_like(x[:, :1], self.bos), x[:, :-1]], dim=1)
    logits = self.net(inputs).float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1))
