"""The installed JAX must compile vmapped products followed by reductions correctly.

jax/jaxlib 0.10.2 return wrong values on CPU for ``jit(vmap(lambda r: sum((M @ r) ** 2)))``
(jax-ml/jax#39103); in lossatlas this made landscape planes wrong by up to 1.5 nats, so
pyproject excludes that release. This test fails loudly if such a build is installed anyway.
"""
import jax
import jax.numpy as jnp
import numpy as np


def test_jit_vmap_matvec_then_reduction_equals_numpy():
    n = 32_769
    i = np.arange(n, dtype=np.float32)
    x = np.stack([i, np.zeros_like(i), np.zeros_like(i)], axis=1)
    m = np.eye(3, dtype=np.float32)
    got = jax.jit(jax.vmap(lambda r: jnp.sum((jnp.asarray(m) @ r) ** 2)))(jnp.asarray(x))
    want = (x.astype(np.float64) ** 2).sum(1)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-6)
