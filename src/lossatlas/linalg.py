"""Small linear algebra shared by every layer: dense solvers that are safe inside vmapped,
device-sharded CPU programs, and the Krylov eigensolvers (Lanczos, power iteration) that
curvature, grads and the experiments run on matrix-free operators.

* Dense: :func:`qr`, :func:`eigh`, :func:`eigvalsh`, :func:`svdvals`, :func:`orthogonal`.
* Krylov, on a symmetric operator given as ``matvec`` of flat vectors:
  :func:`lanczos` (Lanczos 1950, with full reorthogonalisation: classical Gram-Schmidt
  applied twice, "twice is enough", Parlett 1998 sec. 6.9, and restart on breakdown),
  :func:`tridiagonal` / :func:`tridiagonal_eigh` (its ``T`` and Ritz pairs),
  :func:`power_top_k` (power iteration, von Mises 1929, with deflation by projection on
  a shifted operator so it finds the largest *algebraic* eigenvalues), and
  :func:`minres` (Paige & Saunders 1975: least-residual solves of symmetric, possibly
  indefinite or singular, systems).

Why the dense wrappers exist: on XLA:CPU, a *batched* LAPACK call (``jnp.linalg.qr``,
``eigh``, ``svd`` under ``vmap``) splits its batch over the intra-op thread pool
and waits for the pieces. When several CPU devices run one sharded program at
once (``lossatlas.devices.use_all_cpu_cores``, how every sweep runs on a
multi-core CPU), each device's execution can hold a pool thread while waiting,
and the whole process deadlocks at 0% CPU. Measured on jax/jaxlib 0.10.1 with 2
CPU devices: ``jit(vmap(f))`` over 256 sharded keys, ``f`` = a 32x32 QR + eigh,
hung in 1 of 6 fresh processes (and in 1 of 1 at 32 seeds, in a real
``exploding_gradients`` sweep whose RNN uses an orthogonal init); with the
batch mapped sequentially it finished 6 of 6. (``--xla_cpu_multi_thread_eigen=false``
did not prevent it: 1 hang in 4.)

The functions here have the ``jnp.linalg`` signatures. Unbatched they are the
``jnp.linalg`` call; under ``vmap`` on the CPU backend the batch runs as a
``lax.map`` (one LAPACK call per member, no nested pool work). On GPU/TPU the
batched solver is used unchanged. The matrices involved here are small (an
init's square kernel, a Lanczos tridiagonal), so the sequential batch costs
little next to the program around it.

On a batch sharded over CPU devices (a sweep's seed axis) the sequential map compiles
to an all-gather of the batch, after which every device solves every member (the
results are the same; the small solves are repeated). ``tests/test_devices.py`` runs
Lanczos (``curvature.top_eigenvalues``, ``lanczos_quadrature``) and Newton-MR on a
sweep's sharded outputs in a subprocess with a timeout (issue 14, jax/jaxlib 0.10.1, 2
loaded cores: no hang in 27 fresh processes of such calls, nor in 6 of the batched-LAPACK
case above with plain ``jnp.linalg``: that deadlock is rare).
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from lossatlas import validate


def _cpu_sequential_batching(fn):
    """``fn`` whose vmap rule maps the batch sequentially on CPU (see module docstring)."""

    @jax.custom_batching.custom_vmap
    def wrapped(a):
        return fn(a)

    @wrapped.def_vmap
    def _rule(axis_size, in_batched, a):
        del axis_size, in_batched
        if jax.default_backend() == "cpu":
            out = jax.lax.map(wrapped, a)
        else:
            out = jax.vmap(fn)(a)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return functools.wraps(fn)(wrapped)


@functools.cache
def _op(name: str, **kwargs):
    return _cpu_sequential_batching(functools.partial(getattr(jnp.linalg, name), **kwargs))


def qr(a, mode: str = "reduced"):
    """``jnp.linalg.qr`` (no derivatives needed: used for initialisation)."""
    return _op("qr", mode=mode)(a)


def eigh(a):
    """``jnp.linalg.eigh`` of a symmetric matrix: ``(eigenvalues ascending, eigenvectors)``.

    Not differentiable (the Lanczos/SLQ post-processing that uses it needs no gradients).
    """
    return _op("eigh")(a)


def eigvalsh(a):
    """``jnp.linalg.eigvalsh``: eigenvalues of a symmetric matrix, ascending."""
    return _op("eigvalsh")(a)


def svdvals(a):
    """Singular values, descending (``jnp.linalg.svd(a, compute_uv=False)``)."""
    return _op("svd", compute_uv=False)(a)


def orthogonal(scale: float = 1.0, column_axis: int = -1):
    """An orthogonal kernel initialiser (Saxe et al. 2014), like
    ``jax.nn.initializers.orthogonal``, but with :func:`qr` (safe under a sharded
    vmap on CPU). Same distribution: Q of the QR of a Gaussian matrix, signs fixed
    by R's diagonal, times ``scale``.

    Returns:
      ``init(key, shape, dtype=float32) -> array`` for shapes of rank >= 2.
    """

    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            raise ValueError(f"orthogonal initialiser needs a shape of rank >= 2, got {shape}")
        n_rows = 1
        for i, d in enumerate(shape):
            if i != (column_axis % len(shape)):
                n_rows *= d
        n_cols = shape[column_axis]
        mat_shape = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
        a = jax.random.normal(key, mat_shape, dtype)
        q, r = qr(a)
        q = q * jnp.sign(jnp.diag(r))[None, :]
        if n_rows < n_cols:
            q = q.T
        q = jnp.reshape(q, tuple(d for i, d in enumerate(shape) if i != (column_axis % len(shape))) + (n_cols,))
        q = jnp.moveaxis(q, -1, column_axis)
        return scale * q

    return init


# ------------------------------------------------------------------ Krylov eigensolvers
# On a symmetric operator given as ``matvec`` of flat vectors; every iteration runs inside
# ``lax.fori_loop`` with static counts, so they jit and vmap (over start vectors or params).

_HI = lax.Precision.HIGHEST


def _mv(a, b):
    return jnp.matmul(a, b, precision=_HI)


def _normalize(x):
    return x / jnp.maximum(jnp.linalg.norm(x), jnp.finfo(x.dtype).tiny)


def lanczos(matvec: Callable, v0, num_iters: int, restart):
    """``num_iters`` steps of Lanczos with full reorthogonalisation.

    Builds an orthonormal basis ``Q`` of the Krylov space of ``v0`` and the
    tridiagonal ``T = Q^T A Q`` with diagonal ``alphas`` and off-diagonal
    ``betas``. If the Krylov space becomes invariant (``beta_j`` below
    ``100 * eps * ||T||``), the next basis vector is ``roll(restart, j)``
    orthogonalised against ``Q`` and ``beta_j`` is set to 0, so ``T`` stays
    ``Q^T A Q`` (block-diagonal) and repeated eigenvalues are found too.
    Memory: the basis holds ``(m + 1) * n`` numbers; each step costs one
    ``matvec`` plus ``O(m n)`` for the reorthogonalisation.

    Args:
      matvec: symmetric linear map on vectors of shape ``[n]``.
      v0: start vector ``[n]`` (need not be normalised, must be non-zero).
      num_iters: number of steps ``m <= n`` (static int).
      restart: a random vector ``[n]`` (e.g. Gaussian) that seeds restarts; a
        vector rather than a key keeps random-number generation out of the loop.

    Returns:
      ``(alphas [m], betas [m-1], Q [m, n])`` with orthonormal rows ``Q``.
    """
    n = v0.shape[0]
    m = validate.integer("lanczos", "num_iters", num_iters, 1, n)
    dtype = v0.dtype
    tol = 100 * jnp.finfo(dtype).eps
    restart = jnp.asarray(restart, dtype)
    basis = jnp.zeros((m + 1, n), dtype).at[0].set(_normalize(v0))

    def orth(w, basis):  # rows of basis not yet filled are zero
        w = w - _mv(basis.T, _mv(basis, w))
        return w - _mv(basis.T, _mv(basis, w))

    def body(j, state):
        basis, alphas, betas, scale = state
        q = basis[j]
        w = matvec(q)
        alpha = jnp.dot(q, w, precision=_HI)
        w = orth(w, basis)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(alpha) + beta)
        ok = beta > tol * scale
        q_next = lax.cond(ok, lambda: w / beta, lambda: _normalize(orth(jnp.roll(restart, j), basis)))
        basis = basis.at[j + 1].set(q_next)
        return basis, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(ok, beta, 0)), scale

    init = (basis, jnp.zeros(m, dtype), jnp.zeros(m, dtype), jnp.zeros((), dtype))
    basis, alphas, betas, _ = lax.fori_loop(0, m, body, init)
    return alphas, betas[: m - 1], basis[:m]


def lanczos_from_key(matvec: Callable, key, n: int, num_iters: int, dtype):
    """:func:`lanczos` from a Gaussian start vector, with a second Gaussian vector as the
    restart direction, both drawn from ``key`` (one ``[2, n]`` draw).

    Returns:
      ``(alphas, betas, basis)`` as :func:`lanczos`.
    """
    z = jax.random.normal(key, (2, n), dtype)
    return lanczos(matvec, z[0], num_iters, z[1])


def dense_symmetric(matvec: Callable, n: int, dtype):
    """The ``[n, n]`` matrix of a symmetric linear map given as ``matvec`` (one product per
    basis vector, vmapped), symmetrised as ``(A + A^T) / 2`` against rounding."""
    a = jax.vmap(matvec)(jnp.eye(n, dtype=dtype))
    return 0.5 * (a + a.T)


def tridiagonal(alphas, betas):
    """Dense symmetric tridiagonal matrix from its diagonal and off-diagonal."""
    return jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)


def power_top_k(matvec: Callable, n: int, k: int, key, num_iters: int, dtype):
    """Top-``k`` (largest algebraic) eigenpairs by power iteration with deflation.

    Power iteration converges to the eigenvalue of largest *magnitude*. Two
    preliminary runs find both ends of the spectrum (``mu`` = dominant, then the
    dominant of ``A - mu I`` is the other end), giving ``lambda_min``; the
    operator ``B = A + s I`` with ``s = max(0, -lambda_min) + 0.01 |mu|`` is then
    positive definite, its dominant eigenvector is ``A``'s top one, and deflation
    by projecting out the found vectors (``P B P``, ``P = I - V^T V``) yields the
    next. Eigenvalues are Rayleigh quotients ``v^T A v``. Convergence of the
    ``i``-th pair goes like ``((lambda_{i+1} + s) / (lambda_i + s))^num_iters``.
    All ``k + 2`` runs share one ``lax.fori_loop`` (one copy of ``matvec`` in the
    compiled program).

    Args:
      matvec: symmetric linear map on ``[n]`` vectors.
      n, k: dimension and number of eigenpairs (static ints, ``k <= n``).
      key: PRNG key for start vectors.
      num_iters: iterations per run (static int); ``k + 2`` runs in total.
      dtype: floating dtype of the vectors.

    Returns:
      ``(eigenvalues [k] descending, vectors [k, n])``.
    """
    starts = jax.random.normal(key, (k + 2, n), dtype)

    def body(t, state):
        v, found, ends, lams = state          # ends = (mu, other end of the spectrum)
        phase, it = t // num_iters, t % num_iters
        shift = jnp.maximum(0, -jnp.minimum(ends[0], ends[1])) + 0.01 * jnp.abs(ends[0])
        c = jnp.where(phase == 0, 0, jnp.where(phase == 1, -ends[0], shift))

        def proj(x):
            return x - _mv(found.T, _mv(found, x))

        v = jnp.where(it == 0, _normalize(proj(starts[phase])), v)
        w = proj(matvec(v) + c * v)
        rq = jnp.dot(v, w, precision=_HI) - c  # = v^T A v, since P v = v
        last = it == num_iters - 1
        ends = jnp.where(last & (jnp.arange(2) == phase), rq, ends)
        store = last & (phase >= 2)
        i = jnp.clip(phase - 2, 0, k - 1)
        found = jnp.where(store, found.at[i].set(v), found)
        lams = jnp.where(store, lams.at[i].set(rq), lams)
        return _normalize(w), found, ends, lams

    init = (jnp.zeros(n, dtype), jnp.zeros((k, n), dtype), jnp.zeros(2, dtype), jnp.zeros(k, dtype))
    _, vecs, _, lams = lax.fori_loop(0, (k + 2) * num_iters, body, init)
    order = jnp.argsort(-lams)
    return lams[order], vecs[order]


def tridiagonal_eigh(alphas, betas):
    """Eigen-decomposition of the Lanczos tridiagonal ``T`` (diagonal ``alphas``,
    off-diagonal ``betas``): the Ritz values and the coordinates of the Ritz vectors in
    the Lanczos basis.

    Args:
      alphas: ``[m]`` diagonal.
      betas: ``[m - 1]`` off-diagonal.

    Returns:
      ``(theta [m] ascending, s [m, m])`` with ``T = s diag(theta) s^T``; the Ritz
      vectors are ``s.T @ Q`` and ``s[0] ** 2`` are the Gauss quadrature weights of
      the Lanczos start vector.
    """
    return eigh(tridiagonal(alphas, betas))


def minres(matvec: Callable, b, num_iters: int):
    """``num_iters`` steps of MINRES (Paige & Saunders 1975) for ``A x = b``, ``A`` symmetric.

    The iterate ``x_k`` minimises ``||b - A x||`` over the Krylov space
    ``span{b, A b, ..., A^{k-1} b}`` (started from ``x_0 = 0``), built by the
    three-term Lanczos recurrence (no reorthogonalisation: memory is a few vectors
    of size ``n``) and updated with Givens rotations. ``A`` may be indefinite and
    singular (Choi, Paige & Saunders 2011, "MINRES-QLP", sec. 2):

    * ``b`` in the range of ``A`` (consistent): every Krylov vector lies in the range,
      so the limit is the minimum-norm solution ``pinv(A) b``;
    * ``b`` not in the range (inconsistent): the residual decreases monotonically to
      the least-squares residual, and the iteration stops at a least-squares solution
      (not necessarily of minimum norm; MINRES-QLP would give that one).

    Stopping (the state is then frozen, so a fixed ``num_iters`` is safe): the
    previous iterate is kept once it is a least-squares solution to working precision,
    ``||A r|| <= sqrt(eps) ||T|| ||r||`` (scipy's ``minres`` test on the same
    estimates; in floating point a singular ``A`` has eigenvalues ~ ``eps ||A||``
    that would otherwise blow the iterate up); after a Lanczos breakdown
    (``beta_{k+1} <= 100 eps ||T||``) or a residual estimate below ``eps ||b||``.
    Every division is guarded (``b = 0`` gives ``x = 0``). One ``lax.fori_loop``
    (jit and vmap).

    Args:
      matvec: symmetric linear map on vectors ``[n]``.
      b: right-hand side ``[n]`` (floating point; its dtype is the working dtype).
      num_iters: number of MINRES steps (static int ``>= 1``); at most ``n`` are
        needed in exact arithmetic.

    Returns:
      ``x [n]``, the MINRES iterate after ``num_iters`` steps.
    """
    num_iters = validate.integer("minres", "num_iters", num_iters, 1)
    dtype = b.dtype
    eps = jnp.finfo(dtype).eps
    zero = jnp.zeros((), dtype)
    beta1 = jnp.linalg.norm(b)

    def safe(d):
        return jnp.where(d > 0, d, 1)

    def body(k, state):
        x, r1, r2, w, w2, beta, oldb, dbar, epsln, phibar, cs, sn, tnorm2, done = state
        v = r2 / safe(beta)
        y = matvec(v)
        y = y - jnp.where(k > 0, beta / safe(oldb), 0) * r1
        alpha = jnp.dot(v, y, precision=_HI)
        y = y - (alpha / safe(beta)) * r2
        oldb_n, beta_n = beta, jnp.linalg.norm(y)
        tnorm2_n = tnorm2 + alpha ** 2 + oldb_n ** 2 + beta_n ** 2
        tnorm = jnp.sqrt(tnorm2_n)
        delta = cs * dbar + sn * alpha                 # apply the previous rotation
        gbar = sn * dbar - cs * alpha
        epsln_n, dbar_n = sn * beta_n, -cs * beta_n
        # ||A r_{k-1}|| = phibar * hypot(gbar, dbar_n): the previous iterate is a LS solution
        least_squares = jnp.hypot(gbar, dbar_n) <= jnp.sqrt(eps) * tnorm
        gamma = jnp.hypot(gbar, beta_n)                # the new rotation
        g = safe(gamma)
        cs_n, sn_n = gbar / g, beta_n / g
        phi, phibar_n = cs_n * phibar, sn_n * phibar
        w_n = (v - epsln * w2 - delta * w) / g
        new = (x + phi * w_n, r2, y, w_n, w, beta_n, oldb_n, dbar_n, epsln_n, phibar_n, cs_n, sn_n, tnorm2_n,
               (beta_n <= 100 * eps * tnorm) | (jnp.abs(phibar_n) <= eps * beta1))
        keep = done | least_squares
        state = state[:-1] + (keep,)
        return jax.tree_util.tree_map(lambda old, nw: jnp.where(keep, old, nw), state, new)

    vec = jnp.zeros_like(b)
    init = (vec, b, b, vec, vec, beta1, zero, zero, zero, beta1, -jnp.ones((), dtype), zero, zero,
            beta1 == 0)
    return lax.fori_loop(0, num_iters, body, init)[0]


__all__ = ["dense_symmetric", "eigh", "eigvalsh", "lanczos", "lanczos_from_key", "minres", "orthogonal", "power_top_k", "qr", "svdvals", "tridiagonal",
           "tridiagonal_eigh"]
