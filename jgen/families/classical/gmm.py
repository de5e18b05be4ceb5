"""Gaussian mixtures with full, diagonal or spherical covariances, fitted by EM.

Parameters are (weights [K], means [K, D], covariances): [K, D, D] for "full",
[K, D] for "diag", [K] for "spherical". Covariances get `reg_covar` added to
their diagonal, which keeps collapsing components finite.

EM runs one pass over the data per iteration (`sufficient_statistics`), in
blocks of rows whose products stay in cache, so no [N, K, D] (or even [N, D])
intermediate goes through memory:
  * Rows are taken about a shift near the component means (`moment_shift`), so
    float32 sums of squares do not cancel against large means.
  * Diagonal / spherical: the E-step is two products, x @ (-2 mu / var)^T and
    x^2 @ (1 / var)^T, for all components; the M-step two more, r^T x, r^T x^2.
  * Full: the Mahalanobis distances are |(x - mu_k) U_k|^2 with U_k the upper
    Cholesky factor of the precision. U_k is triangular, so its columns are
    taken in bands of BAND_WIDTH: band J needs only the first e_J columns of x,
    one product [B, e_J] x [e_J, K w_J] for all components. The second moments
    are symmetric, so only their upper band rows are formed, one product per
    band, with one factor centred at each component's current mean. The bands
    skip a third of the dense work at D = 50, nearly half at large D.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jgen.families.classical import blocked

COVARIANCE_TYPES = ("full", "diag", "spherical")
BAND_WIDTH = 16  # columns per band (full covariances): narrower skips more work but multiplies less efficiently
# Rows per block, by covariance type: enough that each block's few dozen ops outweigh XLA:CPU's cost of
# launching them, few enough that a block's products stay in cache (benchmarks/README.md, "Classical fits").
BLOCK_SIZE = {"full": 2048, "diag": 512, "spherical": 512}


class GMMParams(NamedTuple):
  weights: jax.Array
  means: jax.Array
  covariances: jax.Array


class Stats(NamedTuple):
  """Responsibility-weighted sums about per-component points `center` [K, D]: N_k, sum r (x - c_k), and
  sum r (x - c_k)(x - c_k)^T [K, D, D] ("full"), sum r (x - c_k)^2 [K, D] ("diag") or its sum over D [K].
  Sums about a point near the component's mean keep float32 from cancelling (see `moment_shift`)."""
  nk: jax.Array
  sum_x: jax.Array
  second: jax.Array
  center: jax.Array


def covariance_type(params) -> str:
  return COVARIANCE_TYPES[3 - params.covariances.ndim]


def precision_cholesky(params):
  """Upper factors U_k with U_k U_k^T = Sigma_k^{-1} (full), or 1/sqrt(variances)."""
  cov = params.covariances
  if cov.ndim == 3:
    chol = jnp.linalg.cholesky(cov)
    eye = jnp.broadcast_to(jnp.eye(cov.shape[-1], dtype=cov.dtype), cov.shape)
    return jnp.swapaxes(jax.scipy.linalg.solve_triangular(chol, eye, lower=True), -1, -2)
  return jax.lax.rsqrt(cov)


def moment_shift(params):
  """The point the sums are taken about: per feature, the component means weighted by weight / variance.

  A float32 sum of r x^2 loses about eps (mu - shift)^2 / var of a component's variance to cancellation;
  weighting by 1 / var puts the shift where the variances are smallest, so the components that need it
  most see (almost) centred data.
  """
  cov = params.covariances
  if cov.ndim == 3:
    var = jnp.diagonal(cov, axis1=-2, axis2=-1)
  else:
    var = jnp.broadcast_to(cov.reshape(cov.shape[0], -1), params.means.shape)
  w = params.weights[:, None] / var
  return jnp.sum(w * params.means, axis=0) / jnp.sum(w, axis=0)


class _Terms(NamedTuple):
  """What the E-step needs from the parameters, formed once per iteration."""
  const: jax.Array  # [K]: log pi_k - D/2 log 2 pi + 1/2 log |Sigma_k^{-1}|
  mats: tuple  # full: per band [e_J, K w_J]; otherwise coefficients of x [D, K'] and of x^2 [D, K'] or |x|^2 [K]
  offsets: object  # full: per band [K w_J]; otherwise [K]


def _terms(params, shift):
  means = params.means - shift
  k, dim = means.shape
  prec = precision_cholesky(params)
  if prec.ndim == 3:
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(prec, axis1=-2, axis2=-1)), axis=-1)
    mu_u = jnp.einsum("kd,kde->ke", means, prec)
    mats, offsets = [], []
    for s, e in blocked.bands(dim, BAND_WIDTH):
      mats.append(jnp.transpose(prec[:, :e, s:e], (1, 0, 2)).reshape(e, k * (e - s)))
      offsets.append(mu_u[:, s:e].reshape(k * (e - s)))
    return _Terms(jnp.log(params.weights) - 0.5 * dim * math.log(2 * math.pi) + half_logdet, tuple(mats), offsets)
  # maha = x^2 . p - 2 x . (mu p) + mu^2 . p; a product with few output columns runs faster with them
  # padded to a multiple of 8.
  p = jnp.square(prec)
  pad = ((0, 0), (0, -k % 8))
  if prec.ndim == 2:
    half_logdet = jnp.sum(jnp.log(prec), axis=-1)
    mats = (jnp.pad((-2.0 * means * p).T, pad), jnp.pad(p.T, pad))
    offsets = jnp.sum(jnp.square(means) * p, axis=1)
  else:
    half_logdet = dim * jnp.log(prec)
    mats = (jnp.pad((-2.0 * means * p[:, None]).T, pad), p)
    offsets = jnp.sum(jnp.square(means), axis=1) * p
  return _Terms(jnp.log(params.weights) - 0.5 * dim * math.log(2 * math.pi) + half_logdet, mats, offsets)


def _squares(xs, cov_type):
  """The second-order features of shifted rows: none (full), x^2 (diag), |x|^2 (spherical)."""
  if cov_type == "diag":
    return jnp.square(xs)
  return jnp.sum(jnp.square(xs), axis=1) if cov_type == "spherical" else None


def _joint(terms, xs, sq, cov_type):
  """log pi_k + log N(x_n; mu_k, Sigma_k) as [B, K] from shifted rows and their `_squares`."""
  n, k = xs.shape[0], terms.const.shape[0]
  if cov_type == "full":
    maha = 0.0
    for m, c in zip(terms.mats, terms.offsets):
      y = xs[:, :m.shape[0]] @ m - c
      maha = maha + jnp.sum(jnp.square(y.reshape(n, k, -1)), axis=-1)
  elif cov_type == "diag":
    maha = (xs @ terms.mats[0] + sq @ terms.mats[1])[:, :k] + terms.offsets[None]
  else:
    maha = (xs @ terms.mats[0])[:, :k] + sq[:, None] * terms.mats[1][None] + terms.offsets[None]
  return terms.const[None] - 0.5 * maha


def _block_stats(xs, sq, resp, cov_type, dm=None):
  """Weighted sums of shifted rows xs: (N_k, sum r xs, second moments about the shift), except for "full":
  (N_k, per band sum r (xs - dm_k), per band sum r (xs - dm_k) xs^T) with dm [K, D] the component centres
  less the shift. Centring one factor at the component keeps float32 products from cancelling; the other
  stays shared by the components, so each band is still one product.
  """
  nk = jnp.sum(resp, axis=0)
  if cov_type == "full":
    n, k, dim = xs.shape[0], resp.shape[1], xs.shape[1]
    # A column of ones makes each band's product also give sum r (x - dm) in its last row.
    xs1 = jnp.concatenate([xs, jnp.ones((n, 1), xs.dtype)], axis=1)
    sums, upper = [], []
    for s, e in blocked.bands(dim, BAND_WIDTH):
      rx = (resp[:, :, None] * (xs[:, None, s:e] - dm[None, :, s:e])).reshape(n, k * (e - s))
      # [D - s + 1, K w] runs faster than its transpose.
      u = jax.lax.dot_general(xs1[:, s:], rx, (((0,), (0,)), ((), ())))
      sums.append(u[-1].reshape(k, e - s))
      upper.append(u[:-1])
    return nk, sums, upper
  sum_x = blocked.over_rows(resp, xs)
  return nk, sum_x, blocked.over_rows(resp, sq) if cov_type == "diag" else sq @ resp


def _stats(block_stats, cov_type, shift, dm):
  """Stats from summed `_block_stats`. Full: sum r (xs - dm) xs^T less sum r (xs - dm) dm^T is the second
  moment about the centres; the band rows hold its whole upper triangle, mirrored for exact symmetry."""
  nk, sum_x, second = block_stats
  if cov_type != "full":
    return Stats(nk, sum_x, second, jnp.broadcast_to(shift, sum_x.shape))
  k, dim = dm.shape
  rows = [jnp.transpose(u.reshape(dim - s, k, e - s), (1, 2, 0)) - r[:, :, None] * dm[:, None, s:]
          for (s, e), u, r in zip(blocked.bands(dim, BAND_WIDTH), second, sum_x)]
  second = blocked.symmetric_from_bands(rows, dim, BAND_WIDTH)
  return Stats(nk, jnp.concatenate(sum_x, axis=1), second, dm + shift)


def joint_log_probs(params, x):
  """log pi_k + log N(x_n; mu_k, Sigma_k) as [N, K]."""
  cov_type = covariance_type(params)
  shift = moment_shift(params)
  xs = x - shift
  return _joint(_terms(params, shift), xs, _squares(xs, cov_type), cov_type)


def component_log_probs(params, x):
  """log N(x_n; mu_k, Sigma_k) as [N, K]."""
  return joint_log_probs(params, x) - jnp.log(params.weights)[None]


def log_prob(params, x):
  """log p(x_n) in nats, [N]."""
  return jax.nn.logsumexp(joint_log_probs(params, x), axis=1)


def e_step(params, x):
  """(mean log-likelihood, responsibilities [N, K])."""
  joint = joint_log_probs(params, x)
  norm = jax.nn.logsumexp(joint, axis=1)
  return jnp.mean(norm), jnp.exp(joint - norm[:, None])


def sufficient_statistics(params, x, block_size=None):
  """E-step and M-step statistics in one pass over x, block by block; returns (sum of log p(x_n), Stats).

  Each block's shifted rows, squares, responsibilities and products stay in cache: no [N, K, D] or
  [N, D] intermediate goes through memory. Full covariances' sums are about the current means.
  """
  cov_type = covariance_type(params)
  block_size = block_size or BLOCK_SIZE[cov_type]
  shift = moment_shift(params)
  terms = _terms(params, shift)
  dm = params.means - shift

  def block(rows):
    xs = rows - shift
    sq = _squares(xs, cov_type)
    joint = _joint(terms, xs, sq, cov_type)
    norm = jax.nn.logsumexp(joint, axis=1)
    resp = jnp.exp(joint - norm[:, None])
    return jnp.sum(norm), _block_stats(xs, sq, resp, cov_type, dm)

  zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(block, x[:1]))
  ll, sums = blocked.fold_rows(x, block_size, lambda acc, rows: jax.tree.map(jnp.add, acc, block(rows)), zeros)
  return ll, _stats(sums, cov_type, shift, dm)


def mean_log_likelihood(params, x, block_size=None):
  """Mean log p(x_n), block by block (no [N, K, D] intermediate)."""
  cov_type = covariance_type(params)
  block_size = block_size or BLOCK_SIZE[cov_type]
  shift = moment_shift(params)
  terms = _terms(params, shift)

  def body(acc, rows):
    xs = rows - shift
    return acc + jnp.sum(jax.nn.logsumexp(_joint(terms, xs, _squares(xs, cov_type), cov_type), axis=1))

  return blocked.fold_rows(x, block_size, body, jnp.zeros((), x.dtype)) / x.shape[0]


def m_step_from_stats(stats, cov_type, reg_covar=1e-6):
  """Maximum-likelihood weights, means and covariances from weighted sums."""
  nk, sum_x, second, center = stats
  dim = sum_x.shape[1]
  # A tiny floor keeps an empty component's mean finite.
  nk = nk + 10 * jnp.finfo(nk.dtype).eps
  offset = sum_x / nk[:, None]  # mean - center: small, so the products below do not cancel
  if cov_type == "full":
    cov = second / nk[:, None, None] - offset[:, :, None] * offset[:, None, :]
    cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2)) + reg_covar * jnp.eye(dim, dtype=offset.dtype)
  elif cov_type == "diag":
    cov = second / nk[:, None] - jnp.square(offset) + reg_covar
  else:
    cov = (second / nk - jnp.sum(jnp.square(offset), axis=1)) / dim + reg_covar
  return GMMParams(nk / jnp.sum(nk), center + offset, cov)


def weighted_stats(x, resp, cov_type):
  """Stats of x under given responsibilities [N, K]; full covariances' sums are about the weighted means."""
  shift = jnp.mean(x, axis=0)
  xs = x - shift
  dm = None
  if cov_type == "full":
    nk = jnp.sum(resp, axis=0)
    dm = (resp.T @ xs) / (nk + 10 * jnp.finfo(nk.dtype).eps)[:, None]
  return _stats(_block_stats(xs, _squares(xs, cov_type), resp, cov_type, dm), cov_type, shift, dm)


def m_step(x, resp, cov_type, reg_covar=1e-6):
  """Maximum-likelihood weights, means and covariances given responsibilities [N, K]."""
  return m_step_from_stats(weighted_stats(x, resp, cov_type), cov_type, reg_covar)


def em_step(params, x, reg_covar=1e-6, block_size=None):
  """One EM iteration; returns the new parameters and the mean log-likelihood of the old ones."""
  ll, stats = sufficient_statistics(params, x, block_size)
  return m_step_from_stats(stats, covariance_type(params), reg_covar), ll / x.shape[0]


def predict(params, x):
  """The most probable component of each row."""
  return jnp.argmax(joint_log_probs(params, x), axis=1)


def predict_proba(params, x):
  return e_step(params, x)[1]


def sample(params, rng, n):
  """n draws (and their components) from the mixture."""
  kc, kz = jax.random.split(rng)
  comp = jax.random.categorical(kc, jnp.log(params.weights), shape=(n,))
  dim = params.means.shape[1]
  eps = jax.random.normal(kz, (n, dim), params.means.dtype)
  cov = params.covariances
  if cov.ndim == 3:
    noise = jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(cov)[comp], eps)
  elif cov.ndim == 2:
    noise = jnp.sqrt(cov[comp]) * eps
  else:
    noise = jnp.sqrt(cov[comp])[:, None] * eps
  return params.means[comp] + noise, comp


def mean_and_covariance(params):
  """Mean and covariance of the mixture (for moment checks)."""
  w, m = params.weights, params.means
  dim = m.shape[1]
  cov = params.covariances
  if cov.ndim == 2:
    cov = jax.vmap(jnp.diag)(cov)
  elif cov.ndim == 1:
    cov = cov[:, None, None] * jnp.eye(dim, dtype=m.dtype)
  mean = w @ m
  d = m - mean
  return mean, jnp.einsum("k,kde->de", w, cov + d[:, :, None] * d[:, None, :])


def num_params(params):
  k, dim = params.means.shape
  cov_params = {"full": k * dim * (dim + 1) // 2, "diag": k * dim, "spherical": k}[covariance_type(params)]
  return cov_params + k * dim + k - 1


def bic(params, x):
  """Bayesian information criterion (lower is better)."""
  n = x.shape[0]
  return -2.0 * jnp.sum(log_prob(params, x)) + num_params(params) * math.log(n)


def aic(params, x):
  """Akaike information criterion (lower is better)."""
  return -2.0 * jnp.sum(log_prob(params, x)) + 2.0 * num_params(params)


def outlier_scores(params, x):
  """Negative log density: the least likely points score highest."""
  return -log_prob(params, x)


def outlier_threshold(params, x, quantile=0.99):
  """The score above which a point is an outlier, so that 1 - quantile of `x` is flagged."""
  return jnp.quantile(outlier_scores(params, x), quantile)
