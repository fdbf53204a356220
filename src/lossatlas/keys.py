"""PRNG key helpers: keys are threaded explicitly (split before use, ``fold_in`` per step,
no global RNG, no default key in a public function)."""
from __future__ import annotations

import jax
import numpy as np

__all__ = ["key_data", "numpy_rng", "require_key"]


def require_key(where: str, key):
    """``key`` if it is a JAX PRNG key (typed or raw uint32), else one ``ValueError`` line.

    Public functions that draw random numbers take the key explicitly: a default key would
    give a user who forgets it the same "random" run every time.
    """
    if key is None:
        raise ValueError(f"{where}: key is required (e.g. key=jax.random.PRNGKey(seed)); "
                         f"lossatlas never picks a default key")
    dtype = getattr(key, "dtype", None)
    if dtype is None or not (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) or dtype == np.uint32):
        raise ValueError(f"{where}: key must be a JAX PRNG key (jax.random.PRNGKey / jax.random.key), "
                         f"got {type(key).__name__}")
    return key


def key_data(key) -> np.ndarray:
    """The raw uint32 words of a typed or raw key, on the host."""
    data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).astype(np.uint32)


def numpy_rng(key) -> np.random.Generator:
    """A numpy generator seeded from a JAX key, for host-side sampling (stream construction,
    bootstrap resamples): the same key gives the same generator on every machine."""
    return np.random.default_rng(key_data(require_key("numpy_rng", key)).ravel().tolist())
