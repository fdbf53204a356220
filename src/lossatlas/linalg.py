"""Dense linear algebra that is safe inside vmapped, device-sharded CPU programs.

Why this module exists: on XLA:CPU, a *batched* LAPACK call (``jnp.linalg.qr``,
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
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


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


__all__ = ["qr", "eigh", "eigvalsh", "svdvals", "orthogonal"]
