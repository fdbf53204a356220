"""Shared plumbing for `lossatlas.grads`: input checks, per-example gradients, tree helpers.

Input checks use :mod:`lossatlas.validate`; example counts and chunking use
:mod:`lossatlas.batching` (:func:`~lossatlas.batching.num_examples`,
:func:`~lossatlas.batching.chunk`).

The convention every function in the package follows:

* ``loss_fn(params, batch) -> scalar`` is the MEAN loss of ``batch``, a pytree of
  arrays that all share a leading example axis.
* The per-example loss of example ``i`` is ``loss_fn`` applied to a batch of one,
  i.e. the batch tree with every leaf sliced to ``leaf[i:i + 1]`` (leading axis of
  size 1). Its gradient is the per-example gradient ``g_i``.
* Whole datasets are processed inside one jitted program by ``lax.scan`` /
  ``lax.map`` over chunks of ``chunk_size`` examples. The example axis is padded
  to a multiple of ``chunk_size`` with copies of example 0 (real inputs, so the
  padded losses stay finite) and the padded rows are masked out exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import validate

tree_map = jax.tree_util.tree_map


def check_params(fn: str, params) -> None:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(f"{fn}: params has no arrays")
    for path, leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise ValueError(f"{fn}: params{jax.tree_util.keystr(path)} has dtype {jnp.result_type(leaf)}; "
                             "every parameter must be floating point")


def concrete(x):
    """``x`` as a numpy array, or None when it is a tracer (checks then run only on concrete input)."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def check_labels(fn: str, labels, n: int, num_classes: int):
    """Validated int32 labels [n] (range checked when concrete)."""
    num_classes = validate.integer(fn, "num_classes", num_classes, 1)
    if np.shape(labels) != (n,):
        raise ValueError(f"{fn}: labels must have shape ({n},) (one per example of data), got {np.shape(labels)}")
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f"{fn}: labels must be integers, got dtype {jnp.result_type(labels)}")
    host = concrete(labels)
    if host is not None and (host.min() < 0 or host.max() >= num_classes):
        raise ValueError(f"{fn}: labels must lie in [0, num_classes={num_classes}), "
                         f"got values in [{host.min()}, {host.max()}]")
    return jnp.asarray(labels, jnp.int32)


def example_grad(loss_fn):
    """``(params, example) -> g``: the gradient of ``loss_fn`` on a batch of one example."""
    def single(params, example):
        return loss_fn(params, tree_map(lambda a: a[None], example))
    return jax.grad(single)


def batch_grads(loss_fn, params, batch):
    """Per-example gradients of a batch (vmap of grad): params tree with a leading axis."""
    return jax.vmap(example_grad(loss_fn), in_axes=(None, 0))(params, batch)


def take(tree, idx):
    """Rows ``idx`` of every leaf."""
    return tree_map(lambda a: jnp.take(a, idx, axis=0), tree)


def bcast(w, x):
    """Weights ``w`` [k] reshaped to broadcast against ``x`` [k, ...] (no rank promotion)."""
    return w.astype(x.dtype).reshape(w.shape + (1,) * (x.ndim - w.ndim))


def flatten_lead(tree, lead: int = 1):
    """Concatenate every leaf, keeping ``lead`` leading axes: [*lead_shape, num_params]."""
    leaves = jax.tree_util.tree_leaves(tree)
    shape = leaves[0].shape[:lead]
    return jnp.concatenate([x.reshape(shape + (-1,)) for x in leaves], axis=-1)


def tree_vdot(a, b):
    """sum over leaves of <a, b>."""
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def tree_sum(tree):
    return sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(tree))


def path_name(path) -> str:
    """``('params', 'Dense_0', 'kernel')`` -> ``"params/Dense_0/kernel"``."""
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts) or "value"

