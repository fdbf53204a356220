"""Geometry of forgetting_curvature: Fisher factors and overlaps, quadratic models of a loss increase.

Pure functions on ``apply(params, x) -> logits`` and parameter pytrees (Kirkpatrick et al. 2017's
Fisher overlap, EWC's quadratic model of forgetting); tested against dense computations in
tests/test_exp_forgetting_curvature.py.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import losses
from lossatlas.curvature import dataset_loss, ggn_vp, hvp

tmap = jax.tree_util.tree_map


def partial_permutations(dim: int, fractions, rng: np.random.Generator) -> np.ndarray:
    """Nested partial permutations ``[len(fractions), dim]``: fraction p moves ``round(p dim)`` inputs.

    One random order of the inputs is drawn; fraction p takes its first ``m = round(p dim)``
    and moves them round one cycle (``perm[o_i] = o_{i+1 mod m}``), so every chosen input moves
    (for m >= 2) and the permuted sets are nested as p grows. Row ``j`` maps output feature
    ``i`` to input feature ``perm[j, i]`` (``x[:, perm]``).
    """
    order = rng.permutation(dim)
    out = np.tile(np.arange(dim), (len(fractions), 1))
    for j, p in enumerate(fractions):
        m = int(round(p * dim))
        if m >= 2:
            out[j, order[:m]] = order[np.roll(np.arange(m), -1)]
    return out


def fisher_factor(apply, params, x):
    """The exact Fisher of a softmax classifier as a factor: ``F = sum_r a_r a_r^T``.

    ``a_(n,k) = sqrt(p_k(x_n) / M) grad log p_k(x_n)`` over the ``M`` inputs ``x`` and the
    ``K`` classes, so ``F = 1/M sum_n J_n^T (diag p_n - p_n p_n^T) J_n`` (J: Jacobian of the
    logits), which equals the generalised Gauss-Newton matrix of the cross-entropy.

    Args:
      apply: ``apply(params, x_B) -> logits [B, K]``.
      params: parameter pytree.
      x: inputs ``[M, ...]``.

    Returns:
      A params-shaped pytree whose leaves have leading axes ``[M, K]``.
    """
    m = x.shape[0]

    def logp(p, xi):
        return jax.nn.log_softmax(apply(p, xi[None])[0])

    jac = jax.vmap(jax.jacrev(logp), (None, 0))(params, x)                         # leaves [M, K, ...]
    w = jnp.sqrt(jax.vmap(lambda xi: jnp.exp(logp(params, xi)))(x) / m)              # [M, K]
    return tmap(lambda j: j * w.reshape(w.shape + (1,) * (j.ndim - 2)), jac)


def rows(factor, layer=None):
    """A factor (or one top-level layer of it) as a matrix ``[M K, P_layer]``."""
    tree = factor if layer is None else factor[layer]
    leaves = jax.tree_util.tree_leaves(tree)
    r = leaves[0].shape[0] * leaves[0].shape[1]
    return jnp.concatenate([a.reshape(r, -1) for a in leaves], axis=1)


def frechet_overlap(a_rows, b_rows):
    """Kirkpatrick et al.'s Fisher overlap ``1 - d^2`` of two Fishers given as factors ``F = A^T A``.

    ``d^2 = 1/2 tr(F^_a + F^_b - 2 (F^_a F^_b)^(1/2))`` with unit-trace ``F^ = F / tr F`` (the
    Frechet distance), so ``1 - d^2 = tr((F^_a F^_b)^(1/2)) = ||A_a A_b^T||_* / (||A_a||_F ||A_b||_F)``:
    the singular values of ``F_a^(1/2) F_b^(1/2)`` are those of ``A_a A_b^T``.

    Args:
      a_rows, b_rows: ``[R_a, P]`` and ``[R_b, P]`` factors.

    Returns:
      The overlap in [0, 1] (1 iff the normalised Fishers are equal).
    """
    c = a_rows @ b_rows.T
    nuc = jnp.sum(jnp.linalg.svd(c, compute_uv=False))
    return nuc / jnp.sqrt(jnp.sum(jnp.square(a_rows)) * jnp.sum(jnp.square(b_rows)))


def diagonal_overlap(a_rows, b_rows):
    """The overlap of the diagonal Fishers: ``sum_i sqrt(f^_a,i f^_b,i)`` (Bhattacharyya coefficient)."""
    fa, fb = jnp.sum(jnp.square(a_rows), axis=0), jnp.sum(jnp.square(b_rows), axis=0)
    return jnp.sum(jnp.sqrt(fa * fb)) / jnp.sqrt(jnp.sum(fa) * jnp.sum(fb))


def _vdot(a, b):
    return sum(jnp.vdot(u, v) for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def quadratic_forms(apply, theta_a, theta_b, fisher_diag_a, x, y, chunk_size=None):
    """Task A's measured loss increase from ``theta_a`` to ``theta_b`` and its local models.

    Args:
      apply: ``apply(params, x) -> logits``.
      theta_a: the task-A solution; theta_b: the parameters after the next task.
      fisher_diag_a: diagonal Fisher of task A at ``theta_a`` (EWC's importance).
      x, y: task A's inputs and labels (the loss is their mean cross-entropy).
      chunk_size: examples per chunk of the curvature products.

    Returns:
      dict of scalars: ``L0``, ``L1`` (loss at both ends), ``dL = L1 - L0``, ``q_ggn`` =
      1/2 d' G d (G: GGN = Fisher, via ``ggn_vp``), ``q_diag`` = 1/2 sum F_ii d_i^2, ``q_hess``
      = 1/2 d' H d (``hvp``), ``lin`` = g . d, ``norm`` = |d|, ``logit_rms`` (RMS change of
      the logits over the inputs).
    """
    d = tmap(lambda b, a: b - a, theta_b, theta_a)

    def loss(p, batch):
        return losses.cross_entropy(apply(p, batch[0]), batch[1])

    data = (x, y)
    full = dataset_loss(loss, data, chunk_size)
    l0, l1 = full(theta_a), full(theta_b)
    gd = ggn_vp(apply, losses.cross_entropy, theta_a, d, data, chunk_size)
    hd = hvp(loss, theta_a, d, data, chunk_size)
    g = jax.grad(full)(theta_a)
    dz = apply(theta_b, x) - apply(theta_a, x)
    return {"L0": l0, "L1": l1, "dL": l1 - l0, "q_ggn": 0.5 * _vdot(d, gd), "q_hess": 0.5 * _vdot(d, hd),
            "q_diag": 0.5 * _vdot(fisher_diag_a, tmap(jnp.square, d)), "lin": _vdot(g, d),
            "norm": jnp.sqrt(_vdot(d, d)), "logit_rms": jnp.sqrt(jnp.mean(jnp.square(dz)))}
