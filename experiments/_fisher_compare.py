"""fisher_estimators' second study: the four diagonal-Fisher estimators on the same examples against
the exact Fisher, and the sampled estimator's error distribution in closed form (pure functions)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from lossatlas import continual as cl


def _flat(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


def sampled_error_theory(logits_fn, params, x, scale) -> dict:
    """The one-draw sampled Fisher's error distribution, from the model's probabilities and per-class gradients.

    The sampled diagonal Fisher draws one label ``y_n ~ p_n`` per example and averages the squared
    gradients ``G_n[y_n] = (d log p_n[y_n] / d theta)^2``; its mean is the exact diagonal Fisher
    ``F = (1/N) sum_n sum_c p_nc G_n[c]``. Its error ``e = (1/N) sum_n u_n`` is a sum of independent
    zero-mean vectors ``u_n = G_n[y_n] - Gbar_n`` (``Gbar_n = sum_c p_nc G_n[c]``), so with
    ``d_nc = G_n[c] - Gbar_n``:

    * ``E||e||^2 = (1/N^2) sum_n sum_c p_nc ||d_nc||^2`` (``mse1``);
    * ``tr(Sigma^2) = (1/N^4) sum_{n,n'} sum_{c,c'} p_nc p_n'c' (d_nc . d_n'c')^2`` (the covariance of ``e``);
    * ``Var||e||^2 = (1/N^4) [sum_n Var_n ||u_n||^2 + 2 sum_{n != n'} E (u_n . u_n')^2]`` (``var1``).

    The mean ``ebar_m`` of ``m`` independent draws then has ``E||ebar_m||^2 = mse1 / m`` (no floor: the
    estimator is unbiased) and ``Var||ebar_m||^2 = var1 / m^3 + 2 (m - 1) tr(Sigma^2) / m^3``.
    Everything is divided by ``scale`` (``||F||``) first, so the numbers are relative squared errors.

    Returns:
      ``{"fisher" [P] (exact diagonal, unscaled), "mse1", "var1", "tr_sigma2"}``.
    """
    def logp_one(p, xi):
        return jax.nn.log_softmax(logits_fn(p, xi[None])[0])

    jac = jax.vmap(jax.jacrev(logp_one), (None, 0))(params, x)                   # leaves [N, K, ...]
    g_NxKxP = jnp.concatenate([jnp.square(j).reshape(j.shape[:2] + (-1,)) for j in jax.tree_util.tree_leaves(jac)],
                              axis=-1)
    p_NxK = jax.vmap(lambda xi: jnp.exp(logp_one(params, xi)))(x)
    n, k = p_NxK.shape
    gbar_NxP = jnp.einsum("nk,nkp->np", p_NxK, g_NxKxP)
    d_NxKxP = (g_NxKxP - gbar_NxP[:, None]) / scale
    sq_NxK = jnp.sum(jnp.square(d_NxKxP), -1)
    mse1 = jnp.sum(p_NxK * sq_NxK) / n ** 2
    w = p_NxK.reshape(-1)
    gram = d_NxKxP.reshape(n * k, -1) @ d_NxKxP.reshape(n * k, -1).T              # [NK, NK]
    pair = (w[:, None] * w[None, :] * jnp.square(gram)).reshape(n, k, n, k).sum((1, 3))  # [N, N]: E (u_n . u_n')^2
    tr_sigma2 = jnp.sum(pair) / n ** 4
    var_u = jnp.sum(p_NxK * jnp.square(sq_NxK), -1) - jnp.square(jnp.sum(p_NxK * sq_NxK, -1))
    var1 = (jnp.sum(var_u) + 2 * (jnp.sum(pair) - jnp.trace(pair))) / n ** 4
    return {"fisher": jnp.mean(gbar_NxP, 0), "mse1": mse1, "var1": var1, "tr_sigma2": tr_sigma2}


def compare_estimators(apply, params, x, y, mask, key, batch_size: int, draws, reps: int = 1) -> dict:
    """The four estimators on the same examples, compared with the exact Fisher (pure; jit/vmap it).

    Args:
      apply: ``apply(params, x) -> logits``.
      params: parameters (end of task 1).
      x, y: the examples and true labels the Fisher is computed on.
      mask: ``[K]`` bool, the active output units.
      key: PRNG key for the sampled estimator.
      batch_size: minibatch size of the ``"batch"`` estimator.
      draws: increasing ints ``m`` dividing ``max(draws)``: the sampled estimator averaged over ``m``
        independent draws.
      reps: ``reps * max(draws)`` independent sampled draws are made; for each ``m`` they are cut into
        ``reps * max(draws) / m`` disjoint groups, each an independent ``m``-draw average.

    Returns:
      ``{"rel_err", "corr", "trace_ratio"}``, each ``{estimator: scalar}`` (vs the exact
      Fisher), plus, per ``m`` (``[len(draws)]``): ``"sampled_rel_err"`` (mean over groups of
      ``||F_m - F|| / ||F||``), ``"sampled_mse"`` (mean over groups of ``||F_m - F||^2 / ||F||^2``),
      ``"sampled_mse_pred"`` and ``"sampled_mse_var_pred"`` (theory, :func:`sampled_error_theory`:
      the mean and variance of one group's squared relative error); ``"theory_vs_exact"``
      (relative difference of the theory's Fisher to the library's exact one) and ``"trace_exact"``.
    """
    logits = lambda p, xs: cl.masked(apply(p, xs), mask)  # noqa: E731
    exact = _flat(cl.fisher_diag(logits, params, x, method="exact"))
    big = max(draws)
    keys = jax.random.split(key, reps * big)
    samples = jax.lax.map(lambda k: _flat(cl.fisher_diag(logits, params, x, method="sampled", key=k)), keys)
    ests = {"exact": exact, "sampled": samples[0],
            "empirical": _flat(cl.fisher_diag(logits, params, x, y, method="empirical")),
            "batch": _flat(cl.fisher_diag(logits, params, x, y, method="batch", batch_size=batch_size))}
    norm = jnp.linalg.norm(exact)
    theory = sampled_error_theory(logits, params, x, norm)
    # Theory for the batch estimator on the N' = nb * b examples it reads: over random partitions,
    # E||mean of a batch||^2 = |g|^2 + tr(S) (N' - b) / (b (N' - 1)) with g the mean per-example
    # gradient and S their covariance, so b tr(F_batch) / tr(F_emp) -> (b |g|^2 + c tr S) / (|g|^2 + tr S).
    n_used = (x.shape[0] // batch_size) * batch_size
    xs_b, ys_b = x[:n_used], y[:n_used]
    g_mean = _flat(jax.grad(lambda p: jnp.mean(jnp.take_along_axis(
        jax.nn.log_softmax(logits(p, xs_b)), ys_b[:, None], axis=-1)))(params))
    g2 = jnp.sum(jnp.square(g_mean))
    tr_emp = jnp.sum(_flat(cl.fisher_diag(logits, params, xs_b, ys_b, method="empirical")))
    c_fpc = (n_used - batch_size) / max(1, n_used - 1)
    batch_pred = (batch_size * g2 + c_fpc * (tr_emp - g2)) / tr_emp

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))

    sq = []
    for m in draws:
        groups = samples.reshape((reps * big // m, m) + samples.shape[1:]).mean(1)
        sq.append(jnp.sum(jnp.square(groups - exact[None]), -1) / norm ** 2)
    ms = jnp.asarray(draws, jnp.float32)
    return {"rel_err": {k: jnp.linalg.norm(v - exact) / norm for k, v in ests.items()},
            "corr": {k: corr(v, exact) for k, v in ests.items()},
            "trace_ratio": {k: jnp.sum(v) / jnp.sum(exact) for k, v in ests.items()},
            "sampled_rel_err": jnp.stack([jnp.mean(jnp.sqrt(s)) for s in sq]),
            "sampled_mse": jnp.stack([jnp.mean(s) for s in sq]),
            "sampled_mse_pred": theory["mse1"] / ms,
            "sampled_mse_var_pred": (theory["var1"] + 2 * (ms - 1) * theory["tr_sigma2"]) / ms ** 3,
            "theory_vs_exact": jnp.linalg.norm(theory["fisher"] - exact) / norm,
            "batch_ratio": batch_size * jnp.sum(ests["batch"]) / tr_emp, "batch_ratio_pred": batch_pred,
            "mean_grad_share": g2 / tr_emp,
            "trace_exact": jnp.sum(exact)}
