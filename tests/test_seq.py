"""Sequence models (seq.lstm, seq.transformer): causality, an exact normalised likelihood, KV-cached sampling
equal to recomputing, the truncation of the sampler, learning a repetitive text, resume, and `jgen sample`."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import cli, registry
from jgen import config as config_lib
from jgen.data.spec import DataSpec
from jgen.families.sequence import sampling
from jgen.train import loop
from tests.helpers import config_path, logged

MODELS = ("seq.lstm", "seq.transformer")
SMALL = {"seq.lstm": dict(embed_dim=8, hidden_dim=16, num_layers=2),
         "seq.transformer": dict(embed_dim=16, num_heads=2, num_layers=2, tie_embeddings=False)}


def _spec(vocab_size=7, length=12):
  vocab = "\x00\ufffd" + "abcdefghijklmnopqrstuvwxyz"[:vocab_size - 2]
  return DataSpec(kind="tokens", shape=(length,), dtype="int32", vocab_size=vocab_size, likelihood_space="tokens",
                  vocab=vocab)


def _family(name, spec=None, **model):
  config = config_lib.defaults_for(name)
  config.model.update(**{**SMALL[name], **model})
  spec = spec or _spec()
  return registry.lookup(name).cls(config, spec)


def _state(family, seed=0):
  x = jnp.zeros((2, *family.spec.shape), jnp.int32)
  return family.init(jax.random.key(seed), {"x": x, "label": jnp.zeros((2,), jnp.int32)})


@pytest.mark.parametrize("name", MODELS)
def test_logits_at_t_ignore_tokens_after_t(name):
  family = _family(name)
  state = _state(family)
  model = jax.jit(lambda s, x: family.network(s)(family.shifted(x)))
  x = jax.random.randint(jax.random.key(1), (3, 12), 0, 7)
  base = model(state, x)
  for t in (0, 5, 11):
    changed = x.at[:, t:].set((x[:, t:] + 1) % 7)  # change x_t and everything after it
    out = model(state, changed)
    np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-5)  # p(x_t | x_<t) reads only x_<t
    if t < 11:
      assert not np.allclose(out[:, t + 1:], base[:, t + 1:], atol=1e-4), "later logits must see the change"


@pytest.mark.parametrize("name", MODELS)
def test_log_prob_is_exact_probabilities_over_all_sequences_sum_to_one(name):
  family = _family(name, _spec(vocab_size=5, length=3))
  state = _state(family)
  every = jnp.array(list(itertools.product(range(5), repeat=3)), jnp.int32)
  log_p = jax.jit(family.log_prob)(state, every, jax.random.key(0))
  assert log_p.shape == (125,)
  np.testing.assert_allclose(float(jax.nn.logsumexp(log_p)), 0.0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_cached_sampling_draws_exactly_the_tokens_of_recomputing(name):
  family = _family(name)
  state = _state(family, seed=3)
  for length, prompt in [(1, []), (6, [2, 3]), (17, [4, 4, 5, 6])]:
    fam = family.with_overrides(f"model.sample_length={length}")
    cond = {"prompt": jnp.array(prompt, jnp.int32)}
    cached = jax.jit(lambda s, r: fam.sample(s, r, 4, cond))(state, jax.random.key(length))
    recomputed = jax.jit(lambda s, r: fam.sample(s, r, 4, cond, cached=False))(state, jax.random.key(length))
    assert cached.shape == (4, len(prompt) + length) and cached.dtype == jnp.int32
    np.testing.assert_array_equal(cached, recomputed)
    np.testing.assert_array_equal(cached[:, :len(prompt)], np.broadcast_to(prompt, (4, len(prompt))))
    assert int(cached.max()) < family.vocab_size  # never the input-only begin-of-sequence id


def test_truncation_keeps_top_k_and_the_nucleus():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  kept = lambda **kw: np.isfinite(np.asarray(sampling.truncate(logits, **kw)))[0].tolist()
  assert kept() == [True] * 4
  assert kept(top_k=2) == [True, True, False, False]
  assert kept(top_p=0.5) == [True, False, False, False]
  assert kept(top_p=0.7) == [True, True, False, False]
  assert kept(top_p=0.85) == [True, True, True, False]
  np.testing.assert_allclose(sampling.truncate(logits, temperature=0.5), logits / 0.5)
  draws = sampling.draw(jax.random.key(0), jnp.repeat(logits, 2000, 0), top_k=2)
  assert set(np.unique(draws).tolist()) == {0, 1}


@pytest.mark.parametrize("name", MODELS)
def test_a_repetitive_text_is_learned_to_near_zero_bits_per_char(name):
  """"abcabc..." windows at every offset: only a window's first character is uncertain (log2 3 bits of T)."""
  t = 24
  family = _family(name, _spec(vocab_size=5, length=t))
  family.config.optim.lr = 1e-2
  text = np.tile(np.array([2, 3, 4], np.int32), 200)
  windows = np.stack([text[i:i + t] for i in range(300)])
  state = _state(family)
  step = jax.jit(family.train_step)
  for i in range(120):
    batch = windows[np.random.default_rng(i).integers(0, len(windows), 32)]
    state, metrics = step(state, {"x": jnp.asarray(batch), "label": jnp.zeros((32,), jnp.int32)}, jax.random.key(i))
  bits = jax.jit(family.eval_step)(state, {"x": jnp.asarray(windows[:64])}, jax.random.key(0))["bits_per_char"]
  assert float(jnp.mean(bits)) < 0.15, float(jnp.mean(bits))
  assert float(jnp.mean(bits)) > math.log2(3) / t * 0.5  # the first character stays uncertain


@pytest.fixture(scope="module")
def trained_lstm(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("seq") / "lstm")
  loop.train(config_lib.load(config_path("configs/seq/lstm_fortunes.py:smoke")), workdir, show_progress=False)
  return workdir


def test_jgen_sample_prints_prompted_texts_and_writes_them(trained_lstm, tmp_path, capsys):
  out = str(tmp_path / "texts.txt")
  rc = cli.main(["sample", "--workdir", trained_lstm, "--prompt", "The ", "--num", "3", "--length", "20",
                 "--kw", "temperature=0.8", "--kw", "top_k=10", "--out", out])
  assert rc == 0
  printed = capsys.readouterr().out
  assert printed.count("--- sample") == 3 and printed.count("\nThe ") == 3
  with open(out, encoding="utf-8") as f:
    assert f.read().count("--- sample") == 3


@pytest.mark.parametrize("args", [["--prompt", "caf\u20ac"], ["--kw", "top_p=1.5"], ["--kw", "temperature=0"],
                                  ["--kw", "top_k=-1"], ["--length", "0"], ["--out", "x.png"]])
def test_bad_text_sampling_input_is_one_line_exit_2(trained_lstm, tmp_path, capsys, args):
  args = [str(tmp_path / a) if a == "x.png" else a for a in args]
  rc = cli.main(["sample", "--workdir", trained_lstm, "--num", "2", *args])
  err = capsys.readouterr().err
  assert rc == 2 and err.count("\n") == 1 and err.startswith("jgen: error:"), err
  assert not (tmp_path / "x.png").exists()


def test_resume_continues_exactly(tmp_path):
  spec = config_path("configs/seq/transformer_fortunes.py:smoke")
  overrides = ["train.log_every=1", "train.ckpt_every=3", "train.eval_every=3", "train.eval_batches=1"]
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  loop.train(config_lib.load(spec, overrides + ["train.steps=6"]), straight, show_progress=False)
  loop.train(config_lib.load(spec, overrides + ["train.steps=3"]), resumed, show_progress=False)
  loop.train(config_lib.load(spec, overrides + ["train.steps=6"]), resumed, show_progress=False)
  assert logged(resumed, "train/loss") == logged(straight, "train/loss")
  assert len(logged(straight, "train/loss")) == 6
