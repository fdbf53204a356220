"""Gradient noise: the gradient noise scale, gradient SNR and minibatch gradient error.

The noise scale is from McCandlish, Kaplan, Amodei et al. (2018), "An Empirical Model
of Large-Batch Training" (arXiv:1812.06162): with per-example gradients ``g_i`` of
mean ``G`` and covariance ``Sigma``, a minibatch of ``B`` examples has gradient noise
``E||g_B - G||^2 = tr(Sigma) / B``, and the "simple" noise scale
``B_simple = tr(Sigma) / |G|^2`` is the batch size at which noise and signal are equal.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import validate
from lossatlas.batching import chunk, num_examples
from lossatlas.grads._util import batch_grads, bcast, check_params, take, tree_map, tree_sum, tree_vdot


def _dtype(params):
    return jnp.result_type(*jax.tree_util.tree_leaves(params))


def gradient_moments(loss_fn, params, data, chunk_size: int):
    """Mean and summed squared deviations of the per-example gradients (traceable).

    One ``lax.scan`` over chunks; chunk statistics are merged with Chan et al.'s
    (1979) pairwise update, which avoids the cancellation of ``E[g^2] - E[g]^2``.
    Only one chunk of per-example gradients exists at a time.

    Returns:
      ``(mean, m2)``: params-shaped trees, ``mean = (1/N) sum_i g_i`` and
      ``m2 = sum_i (g_i - mean)^2`` per coordinate.
    """
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    chunks, mask = chunk(data, n, min(chunk_size, n))
    dt = _dtype(params)
    zeros = tree_map(jnp.zeros_like, params)

    def body(carry, xs):
        n_a, mean_a, m2_a = carry
        c, m = xs
        g = batch_grads(loss_fn, params, c)
        n_b = jnp.sum(m).astype(dt)
        mean_b = tree_map(lambda x: jnp.sum(bcast(m, x) * x, axis=0) / n_b, g)
        m2_b = tree_map(lambda x, mu: jnp.sum(bcast(m, x) * jnp.square(x - mu[None]), axis=0), g, mean_b)
        n_ab = n_a + n_b
        delta = tree_map(lambda a, b: b - a, mean_a, mean_b)
        mean = tree_map(lambda a, d: a + d * (n_b / n_ab), mean_a, delta)
        m2 = tree_map(lambda a, b, d: a + b + jnp.square(d) * (n_a * n_b / n_ab), m2_a, m2_b, delta)
        return (n_ab, mean, m2), None

    (_, mean, m2), _ = jax.lax.scan(body, (jnp.zeros((), dt), zeros, zeros), (chunks, mask))
    return mean, m2


def noise_scale(loss_fn, params, data, chunk_size=64, batch_size=None):
    """Gradient noise scale and signal-to-noise ratio over a whole dataset.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, the MEAN loss of a batch; the
        per-example loss is ``loss_fn`` on a batch of one (leading axis of size 1).
      params: parameter pytree.
      data: pytree of arrays with a leading axis of N >= 2 examples.
      chunk_size: examples per scan step (peak memory ~ chunk_size gradients).
      batch_size: B for the minibatch SNR; ``None`` means B = 1 (per example).

    Returns:
      A dict with
      ``"mean_grad"``: G = (1/N) sum_i g_i (params-shaped; the full-batch gradient);
      scalars ``"num_examples"``: N; ``"grad_norm_sq"``: |G|^2;
      ``"trace_sigma"``: tr(Sigma) = sum_i |g_i - G|^2 / (N - 1) (unbiased);
      ``"grad_norm_sq_unbiased"``: |G|^2 - tr(Sigma)/N, McCandlish et al.'s unbiased
      estimate of the squared norm of the population gradient (may be < 0 when
      noise dominates); ``"b_simple"``: tr(Sigma) / |G|^2;
      ``"batch_size"``: B; ``"snr"``: |G|^2 / (tr(Sigma) / B) = B / b_simple;
      ``"coord_snr_mean"``, ``"coord_snr_median"``: mean and median over parameter
      coordinates of |G_j| / std_j (per-coordinate mean over unbiased standard
      deviation of g_ij), skipping coordinates with zero variance.

      Because tr(Sigma) uses N - 1, duplicating the dataset multiplies ``b_simple``
      by ``(2N - 2) / (2N - 1)``; ``b_simple * (N - 1) / N`` (the finite-population
      version, covariance over N) is exactly invariant.

    Raises:
      ValueError: fewer than 2 examples, ragged data, bad chunk or batch size.
    """
    fn = "grads.noise_scale"
    check_params(fn, params)
    n = num_examples(data, fn, "data")
    if n < 2:
        raise ValueError(f"{fn}: data needs at least 2 examples for a covariance, got {n}")
    chunk_size = validate.integer(fn, "chunk_size", chunk_size, 1)
    batch_size = 1 if batch_size is None else validate.integer(fn, "batch_size", batch_size, 1)
    return _noise_scale(loss_fn, chunk_size, params, data, jnp.asarray(batch_size, _dtype(params)))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _noise_scale(loss_fn, chunk_size, params, data, batch_size):
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    mean, m2 = gradient_moments(loss_fn, params, data, chunk_size)
    g2 = tree_vdot(mean, mean)
    tr = tree_sum(m2) / (n - 1)
    mean_flat = jnp.concatenate([x.reshape(-1) for x in jax.tree_util.tree_leaves(mean)])
    var_flat = jnp.concatenate([x.reshape(-1) for x in jax.tree_util.tree_leaves(m2)]) / (n - 1)
    coord_snr = jnp.where(var_flat > 0, jnp.abs(mean_flat) / jnp.sqrt(jnp.where(var_flat > 0, var_flat, 1)),
                          jnp.nan)
    b_simple = tr / g2
    return {
        "mean_grad": mean, "num_examples": jnp.asarray(n, g2.dtype), "grad_norm_sq": g2,
        "trace_sigma": tr, "grad_norm_sq_unbiased": g2 - tr / n, "b_simple": b_simple,
        "batch_size": batch_size, "snr": batch_size / b_simple,
        "coord_snr_mean": jnp.nanmean(coord_snr), "coord_snr_median": jnp.nanmedian(coord_snr),
    }


def minibatch_gradient_error(loss_fn, params, data, batch_sizes, key, num_batches, chunk_size=64):
    """Relative error of minibatch gradients, ``E ||g_B - G|| / ||G||``, per batch size.

    Each minibatch is B distinct examples drawn uniformly without replacement;
    ``g_B = grad(loss_fn)(params, minibatch)`` and G is the full-dataset mean
    gradient. For B << N the error falls like ``1 / sqrt(B)``
    (``E||g_B - G||^2 = tr(Sigma) (1/B - 1/N)``; McCandlish et al. 2018), and it is 0
    at B = N. The ``num_batches`` minibatches of one size are vmapped; the few batch
    sizes are unrolled in the same jitted program.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, the mean loss of a batch.
      params: parameter pytree.
      data: pytree of arrays with a leading axis of N examples.
      batch_sizes: sequence of ints in [1, N].
      key: PRNG key for the minibatch draws.
      num_batches: minibatches averaged per batch size.
      chunk_size: examples per scan step when computing G.

    Returns:
      float array ``[len(batch_sizes)]`` of mean relative errors.

    Raises:
      ValueError: bad ``batch_sizes`` (empty, not ints, > N), ``num_batches`` or data.
    """
    fn = "grads.minibatch_gradient_error"
    check_params(fn, params)
    n = num_examples(data, fn, "data")
    if isinstance(batch_sizes, np.ndarray):
        batch_sizes = batch_sizes.tolist()
    sizes = validate.int_tuple(fn, "batch_sizes", batch_sizes, 1)
    if max(sizes) > n:
        validate.fail(fn, "batch_sizes", batch_sizes, f"a non-empty tuple of sizes in [1, N={n}]")
    num_batches = validate.integer(fn, "num_batches", num_batches, 1)
    chunk_size = validate.integer(fn, "chunk_size", chunk_size, 1)
    return _minibatch_error(loss_fn, sizes, num_batches, chunk_size, params, data, key)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _minibatch_error(loss_fn, sizes, num_batches, chunk_size, params, data, key):
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    full, _ = gradient_moments(loss_fn, params, data, chunk_size)
    full_norm = jnp.sqrt(tree_vdot(full, full))

    def error(k, b):
        idx = jax.random.permutation(k, n)[:b]
        g = jax.grad(loss_fn)(params, take(data, idx))
        diff = tree_map(jnp.subtract, g, full)
        return jnp.sqrt(tree_vdot(diff, diff)) / full_norm

    out = []
    for i, b in enumerate(sizes):
        keys = jax.random.split(jax.random.fold_in(key, i), num_batches)
        out.append(jnp.mean(jax.vmap(functools.partial(error, b=b))(keys)))
    return jnp.stack(out)
