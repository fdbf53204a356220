"""Devices and hosts: every vmapped axis lossatlas owns is sharded over the devices, and the
same program runs on several processes (hosts) through JAX's distributed runtime.

One core as one device. XLA:CPU runs one compiled program's small matrix products on one
core. Exposing each core as its own CPU device (``--xla_force_host_platform_device_count``,
:func:`use_all_cpu_cores`) and sharding a vmapped axis over them runs its members in
parallel; on a GPU machine the flag only affects the (unused) host platform.

Which axes are sharded. Every batch axis the library itself vmaps is split over a mesh of
*all* devices (``jax.devices()``: every process's devices under :func:`initialize_distributed`)
with ``jax.sharding`` (``Mesh``, ``NamedSharding``, ``PartitionSpec``):

* ``train.sweep``: the grid-cell and seed axes, on a 2-D mesh ``("grid", "seed")`` whose seed
  side takes as many devices as divide the seed count (see :func:`mesh_for`);
* ``continual.run_stream``: the (member, lambda) point and seed axes, the same way; if they do
  not split and there are more seeds than devices, the seeds are padded up to a multiple of
  the device count (e.g. 5 seeds on 2 devices run as 6, and 5 are returned);
* ``landscape.plane`` / ``line`` / ``interpolate``: the points (:func:`shard_batch`);
* ``saddles.find_critical_points``: the starts (:func:`shard_batch`);
* analysis vmapped over a sweep's outputs (``jax.jit(jax.vmap(curvature.top_eigenvalues ...))``)
  follows the sharding of its inputs: a sweep's seed-sharded state stays sharded; shard your own
  batch with ``shard_batch_axis(tree, mesh_for(n))``.

When an axis size does not divide over the devices (e.g. 3 seeds on 2 devices with no grid),
that axis is not sharded and the program runs on the default device, exactly as with one
device. Sharding never changes the numbers beyond float32 reassociation inside XLA (each
member's computation is the same; ``tests/test_sharding.py`` compares with one device).

Outputs stay sharded: vmap dense linear algebra over them with :mod:`lossatlas.linalg`, not
``jnp.linalg`` (a batched LAPACK call over a sharded axis can deadlock XLA:CPU's thread pool).

Inside a ``jax.jit`` of your own, :func:`shard_batch` constrains the axis with
``jax.lax.with_sharding_constraint``: arguments committed to one device
(``jax.device_put(x, jax.devices()[0])``) then conflict with the constraint; pass uncommitted
or sharded arrays.

Several hosts. :func:`initialize_distributed` starts ``jax.distributed`` (on CPU with the
gloo collectives); afterwards ``jax.devices()`` lists every process's devices, each process
runs the same program on its share of every sharded axis, and :func:`to_host` gathers a result
(a global array no single process holds) onto every process, process 0 included.
"""
from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lossatlas import validate

__all__ = ["batch_spec", "initialize_distributed", "is_primary", "mesh_for", "replicate", "shard_batch",
           "shard_batch_axis", "to_host", "use_all_cpu_cores"]

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


def mesh_for(sizes: int | Sequence[int], axis_names: str | Sequence[str] = "batch") -> Mesh | None:
    """A mesh over every device that splits batch axes of ``sizes`` members evenly, or None.

    The innermost (last) axis takes as many devices as divide its size (``gcd``), the next
    axis the rest, and so on; if the devices cannot all be used that way (e.g. 3 seeds on 2
    devices) the result is None: the axes stay unsharded, on the default device. With one
    device the result is None too. (Taking the gcd innermost first never misses a split that
    exists: any other choice leaves a multiple of the remainder for the outer axes.)

    Args:
      sizes: members along each batch axis, outermost first (an int for one axis).
      axis_names: a name per axis (a str for one axis), e.g. ``("grid", "seed")``.

    Returns:
      A ``jax.sharding.Mesh`` of shape ``[d_1, ..., d_k]`` (``d_i`` divides ``sizes[i]``,
      ``prod(d_i) == len(jax.devices())``), or None.

    Raises:
      ValueError: ``sizes`` and ``axis_names`` differ in length, or a size is below 1.
    """
    sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else tuple(sizes)
    names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
    if len(sizes) != len(names) or not sizes:
        raise ValueError(f"mesh_for: axis_names must name each of the {len(sizes)} axes, got {names!r}")
    if any(int(s) < 1 for s in sizes):
        raise ValueError(f"mesh_for: sizes must be positive integers, got {sizes!r}")
    devices = jax.devices()
    left, shape = len(devices), []
    for s in reversed(sizes):
        d = int(np.gcd(left, int(s)))
        shape.append(d)
        left //= d
    if len(devices) <= 1 or left != 1:
        return None
    return Mesh(np.asarray(devices).reshape(tuple(reversed(shape))), names)


def batch_spec(mesh: Mesh, axis: int = 0, names: Sequence[str] | None = None) -> PartitionSpec:
    """``PartitionSpec`` splitting array axes ``axis, axis + 1, ...`` over mesh axes ``names``.

    A mesh axis of size 1 is written as None and trailing Nones are dropped, as XLA writes the
    shardings it returns (so a chunked program's state and outputs share one executable).

    Args:
      mesh: the mesh.
      axis: the first batch axis of the array.
      names: mesh axes, one per batch axis (default: all of ``mesh``'s, in order).

    Returns:
      The ``PartitionSpec`` (other array axes replicated).
    """
    names = tuple(mesh.axis_names if names is None else names)
    spec = [None] * axis + [n if mesh.shape[n] > 1 else None for n in names]
    while spec and spec[-1] is None:  # P("grid", None) is written P("grid")
        spec.pop()
    return PartitionSpec(*spec)


def shard_batch_axis(tree, mesh: Mesh | None, axis: int = 0, names: Sequence[str] | None = None):
    """Place every leaf of ``tree`` split along its batch axes over ``mesh``.

    Array axes ``axis, axis + 1, ...`` are split over the mesh axes ``names`` (default: all
    of the mesh's, outermost first); e.g. a sweep's state ``[P, S, ...]`` on a
    ``("grid", "seed")`` mesh with ``axis=0``, or its keys ``[S]`` with ``names=("seed",)``.
    A chunked program's state then has the shardings the program itself returns, so every
    chunk (and a state restored from a checkpoint) runs the same executable.

    Args:
      tree: pytree of arrays (numpy or JAX).
      mesh: from :func:`mesh_for`; None returns ``tree`` unchanged.
      axis: the first batch axis of every leaf.
      names: mesh axes to split over, one per batch axis.

    Returns:
      The placed pytree (global ``jax.Array`` s; under several processes each holds its shards).
    """
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, batch_spec(mesh, axis, names)))


def shard_batch(tree, axis_name: str = "batch"):
    """Split the leading axis of every leaf of ``tree`` over all devices, if its size divides.

    For the batch axes library functions create themselves (the points of
    ``landscape.plane``, the starts of ``saddles.find_critical_points``): eagerly the leaves are
    placed (:func:`shard_batch_axis`); under ``jax.jit`` (traced leaves) the axis is constrained
    with ``jax.lax.with_sharding_constraint`` and XLA partitions the computation around it.
    Under an outer ``vmap`` the outer axis is left to XLA. Unchanged if the leaves have no
    common leading size or it does not divide (:func:`mesh_for`).

    Args:
      tree: pytree of arrays sharing a leading axis.
      axis_name: name of the mesh axis.

    Returns:
      ``tree``, sharded along its leading axis where possible.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if len(sizes) != 1 or None in sizes:
        return tree
    mesh = mesh_for(sizes.pop() or 1, axis_name)
    if mesh is None:
        return tree
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, batch_spec(mesh)))
    return shard_batch_axis(tree, mesh)


def replicate(tree, mesh: Mesh | None):
    """Place a pytree on every device of ``mesh`` (or on the default device)."""
    if mesh is None:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


# ------------------------------------------------------------------------------ several hosts
def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, local_device_ids: Sequence[int] | None = None,
                           initialization_timeout: int = 300) -> bool:
    """Join this process to a multi-process JAX run (one per host, or one per GPU).

    Calls ``jax.distributed.initialize``; it must run before the first computation. Arguments
    left as None come from ``LOSSATLAS_COORDINATOR`` (``host:port`` of process 0),
    ``LOSSATLAS_NUM_PROCESSES`` and ``LOSSATLAS_PROCESS_ID`` when set, else JAX detects them
    itself (SLURM, Open MPI, Kubernetes JobSet, Cloud TPU: under ``srun`` nothing needs to be
    passed). On CPU the cross-process collectives use gloo
    (``jax_cpu_collectives_implementation``). Afterwards ``jax.devices()`` lists every
    process's devices, each sharded axis is split over all of them, every process runs the same
    program on its shards, and :func:`to_host` gathers a result on every process.

    Args:
      coordinator_address: ``"host:port"`` of process 0's coordinator service.
      num_processes: number of processes in the run (``>= 1``).
      process_id: this process's rank, ``0 <= process_id < num_processes``.
      local_device_ids: the devices this process uses (e.g. ``[0]`` for one GPU per process).
      initialization_timeout: seconds to wait for every process to join before failing.

    Returns:
      True if it initialised, False if ``jax.distributed`` was already initialised (nothing done).

    Raises:
      ValueError: a count, rank or timeout out of range (from the arguments or the environment).
    """
    where = "initialize_distributed"
    if jax.distributed.is_initialized():
        return False
    env = os.environ
    coordinator_address = coordinator_address or env.get("LOSSATLAS_COORDINATOR") or None
    if num_processes is None and env.get("LOSSATLAS_NUM_PROCESSES"):
        num_processes = _env_int("LOSSATLAS_NUM_PROCESSES")
    if process_id is None and env.get("LOSSATLAS_PROCESS_ID"):
        process_id = _env_int("LOSSATLAS_PROCESS_ID")
    num_processes = validate.integer(where, "num_processes", num_processes, 1, optional=True)
    hi = None if num_processes is None else num_processes - 1
    process_id = validate.integer(where, "process_id", process_id, 0, hi, optional=True)
    initialization_timeout = validate.integer(where, "initialization_timeout", initialization_timeout, 1)
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id, local_device_ids=local_device_ids,
                               initialization_timeout=initialization_timeout)
    return True


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except ValueError:
        validate.fail("initialize_distributed", name, os.environ[name], "an integer")


def is_primary() -> bool:
    """Whether this is process 0 (the one that should write files and print).

    Returns:
      True on process 0 and in a single-process run.
    """
    return jax.process_index() == 0


def to_host(tree):
    """Every leaf of ``tree`` on this process's host, gathered across processes.

    A fully addressable leaf is copied (``jax.device_get``); a global array split over several
    processes (a sweep's outputs after :func:`initialize_distributed`) is gathered with
    ``jax.experimental.multihost_utils.process_allgather``: a collective, so every process must
    call it, and every process (process 0 included) gets the whole array.

    Args:
      tree: pytree of arrays.

    Returns:
      The pytree with numpy leaves (typed PRNG key arrays stay key arrays).
    """
    from jax.experimental import multihost_utils

    def one(x):
        if not isinstance(x, jax.Array):
            return np.asarray(x)
        if x.is_fully_addressable:
            return jax.device_get(x)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = multihost_utils.process_allgather(jax.random.key_data(x), tiled=True)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.tree_util.tree_map(one, tree)
