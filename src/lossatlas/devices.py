"""Device helpers: every CPU core as a JAX device, and the seed axis sharded over devices.

XLA:CPU runs one compiled program's small matrix products on one core. Exposing
each core as its own CPU device (``--xla_force_host_platform_device_count``) and
sharding a sweep's seed axis over them runs the seeds in parallel; on a GPU
machine the flag only affects the (unused) host platform.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

_FLAG = "--xla_force_host_platform_device_count"


def use_all_cpu_cores(count: int | None = None) -> bool:
    """Expose ``count`` (default: all) CPU cores as JAX devices.

    Must run before JAX initialises its backends (before the first computation);
    afterwards it changes nothing. An explicit flag in ``XLA_FLAGS`` wins.

    Returns:
      True if the flag was added to ``XLA_FLAGS``.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return False
    count = count or os.cpu_count() or 1
    if count <= 1:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={count}".strip()
    return True


def seed_mesh(num_seeds: int) -> Mesh | None:
    """A 1-D mesh over the default devices if the seed count divides evenly, else None."""
    devices = jax.devices()
    if len(devices) <= 1 or num_seeds % len(devices):
        return None
    return Mesh(np.asarray(devices), ("seed",))


def shard_leading(x, mesh: Mesh | None):
    """Place ``x`` split along its leading axis over ``mesh`` (unchanged if mesh is None)."""
    return shard_axis(x, mesh, 0)


def shard_axis(tree, mesh: Mesh | None, axis: int):
    """Place every leaf of ``tree`` split along axis ``axis`` (the seed axis) over ``mesh``.

    A chunked program's state then has the shardings the program itself returns, so every
    chunk (and a state restored from a checkpoint) runs the same executable; returns
    ``tree`` unchanged if mesh is None.
    """
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(*([None] * axis), "seed")))


def replicate(tree, mesh: Mesh | None):
    """Place a pytree on every device of ``mesh`` (or on the default device)."""
    if mesh is None:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
