"""Class-specific gradients: per-class mean gradients, their cosine matrix, and alignment.

How similar are the corrections that different classes ask for? The per-class
gradient ``g_c`` (gradient of the mean loss over the examples of class c) and the
class-by-class cosine similarity of these gradients follow the gradient-alignment
analyses of Fort, Nowak, Jastrzebski and Narayanan (2019), "Stiffness: A New
Perspective on Generalization in Neural Networks" (arXiv:1901.09491), whose
"stiffness" is the cosine between two examples' gradients, averaged within and
between classes (:func:`within_between_alignment`).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import validate
from lossatlas.batching import chunk, num_examples
from lossatlas.grads._util import (batch_grads, bcast, check_labels, check_params, concrete, flatten_lead, take,
                                   tree_map, tree_vdot)


class ClassGradients(NamedTuple):
    """Output of :func:`class_gradients`.

    Attributes:
      grads: params-shaped pytree with leaves ``[C, *leaf.shape]``; row c is the
        gradient of the mean loss over the selected examples of class c (zeros
        when class c has no selected example).
      cosine: ``[C, C]`` cosine similarities of the flattened class gradients;
        NaN in the rows and columns of classes with no selected example (or a
        gradient that is exactly zero).
      counts: int32 ``[C]`` number of selected examples per class.
    """
    grads: Any
    cosine: jax.Array
    counts: jax.Array


def class_gradients(loss_fn, params, data, labels, num_classes, mask=None, chunk_size=64):
    """Per-class gradients of the mean loss, their cosine matrix and class counts.

    With ``mask`` (e.g. ``predictions != labels`` for the misclassified examples)
    only the selected examples count: ``g_c = mean of g_i over {i: labels_i = c,
    mask_i}``. Without a mask, ``sum_c counts_c * g_c / N`` is the full gradient.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, the mean loss of a batch; the
        per-example loss is ``loss_fn`` on a batch of one (leading axis of size 1).
      params: parameter pytree.
      data: pytree of arrays with a leading axis of N examples.
      labels: int ``[N]`` class of each example, in ``[0, num_classes)``.
      num_classes: C.
      mask: optional bool or 0/1 ``[N]`` selection.
      chunk_size: examples per ``lax.scan`` step (peak memory ~ chunk_size gradients).

    Returns:
      :class:`ClassGradients` ``(grads [C, ...], cosine [C, C], counts [C])``.

    Raises:
      ValueError: labels of the wrong shape, dtype or range; bad mask, num_classes,
        chunk_size or data.
    """
    fn = "grads.class_gradients"
    check_params(fn, params)
    n = num_examples(data, fn, "data")
    labels = check_labels(fn, labels, n, num_classes)
    if mask is None:
        mask = jnp.ones((n,), jnp.float32)
    elif np.shape(mask) != (n,):
        raise ValueError(f"{fn}: mask must have shape ({n},) (one per example of data), got {np.shape(mask)}")
    chunk_size = validate.integer(fn, "chunk_size", chunk_size, 1)
    return _class_gradients(loss_fn, int(num_classes), min(chunk_size, n), params, data, labels,
                            jnp.asarray(mask).astype(jnp.float32))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _class_gradients(loss_fn, num_classes, chunk_size, params, data, labels, mask):
    n = labels.shape[0]
    chunks, pad_mask = chunk((data, labels, mask), n, chunk_size)

    def body(carry, xs):
        sums, counts = carry
        (c, y, m), valid = xs
        w_BxC = jax.nn.one_hot(y, num_classes, dtype=jnp.float32) * (m * valid)[:, None]
        g = batch_grads(loss_fn, params, c)
        sums = tree_map(lambda s, x: s + jnp.tensordot(w_BxC.astype(x.dtype).T, x, axes=1), sums, g)
        return (sums, counts + jnp.sum(w_BxC, axis=0)), None

    zeros = tree_map(lambda p: jnp.zeros((num_classes,) + p.shape, p.dtype), params)
    (sums, counts), _ = jax.lax.scan(body, (zeros, jnp.zeros((num_classes,), jnp.float32)), (chunks, pad_mask))
    grads = tree_map(lambda s: s / bcast(jnp.maximum(counts, 1.0), s), sums)
    flat_CxP = flatten_lead(grads)
    gram = flat_CxP @ flat_CxP.T
    norm = jnp.sqrt(jnp.diagonal(gram))
    norm = jnp.where((counts > 0) & (norm > 0), norm, jnp.nan)
    cosine = gram / (norm[:, None] * norm[None, :])
    return ClassGradients(grads, cosine, jnp.round(counts).astype(jnp.int32))


def within_between_alignment(loss_fn, params, data, labels, num_classes, num_pairs, key, chunk_size=64):
    """Mean cosine similarity of two examples' gradients, same class vs different classes.

    Within-class pairs: an anchor drawn uniformly from the examples whose class has
    at least 2 examples, and a partner drawn uniformly from the other examples of
    its class. Between-class pairs: an anchor drawn uniformly from all examples, a
    partner uniformly from the examples of other classes. A network that has
    learned class structure has within > between (Fort et al. 2019's stiffness).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, per-example loss = a batch of one.
      params: parameter pytree.
      data: pytree of arrays with a leading axis of N examples.
      labels: int ``[N]`` classes in ``[0, num_classes)``.
      num_classes: C.
      num_pairs: pairs drawn for each of the two kinds.
      key: PRNG key.
      chunk_size: pairs per ``lax.map`` step.

    Returns:
      dict: ``"within"``, ``"between"``: mean cosines (pairs where a gradient is exactly
      zero, whose cosine is NaN, are skipped); ``"within_cosines"``,
      ``"between_cosines"``: the ``[num_pairs]`` cosines.

    Raises:
      ValueError: bad labels / num_classes / num_pairs / chunk_size, no class with 2
        examples, or a single class present (checked when labels are concrete).
    """
    fn = "grads.within_between_alignment"
    check_params(fn, params)
    n = num_examples(data, fn, "data")
    labels = check_labels(fn, labels, n, num_classes)
    num_pairs = validate.integer(fn, "num_pairs", num_pairs, 1)
    chunk_size = validate.integer(fn, "chunk_size", chunk_size, 1)
    host = concrete(labels)
    if host is not None:
        counts = np.bincount(host, minlength=num_classes)
        if counts.max() < 2:
            raise ValueError(f"{fn}: labels need a class with at least 2 examples for within-class pairs")
        if counts.max() == n:
            raise ValueError(f"{fn}: labels hold a single class; between-class pairs need two")
    return _alignment(loss_fn, int(num_classes), num_pairs, min(chunk_size, 2 * num_pairs),
                      params, data, labels, key)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _alignment(loss_fn, num_classes, num_pairs, chunk_size, params, data, labels, key):
    n = labels.shape[0]
    order = jnp.argsort(labels, stable=True)            # examples grouped by class
    position = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    counts = jnp.bincount(labels, length=num_classes)
    starts = jnp.cumsum(counts) - counts
    k1, k2, k3, k4 = jax.random.split(key, 4)

    eligible = (counts[labels] >= 2).astype(jnp.float32)
    a = jax.random.choice(k1, n, (num_pairs,), p=eligible / jnp.sum(eligible))
    ca = counts[labels[a]]
    r = jax.random.randint(k2, (num_pairs,), 0, jnp.maximum(ca - 1, 1))
    start = starts[labels[a]]
    b = order[start + (position[a] - start + 1 + r) % ca]

    a2 = jax.random.randint(k3, (num_pairs,), 0, n)
    c2, s2 = counts[labels[a2]], starts[labels[a2]]
    r2 = jax.random.randint(k4, (num_pairs,), 0, jnp.maximum(n - c2, 1))
    b2 = order[jnp.where(r2 < s2, r2, r2 + c2)]

    first, second = jnp.concatenate([a, a2]), jnp.concatenate([b, b2])
    total = 2 * num_pairs
    (first_c, second_c), _ = chunk((first, second), total, chunk_size)

    def cosines(idx):
        ga = batch_grads(loss_fn, params, take(data, idx[0]))
        gb = batch_grads(loss_fn, params, take(data, idx[1]))
        dot = jax.vmap(tree_vdot)(ga, gb)
        na, nb = jax.vmap(lambda g: tree_vdot(g, g))(ga), jax.vmap(lambda g: tree_vdot(g, g))(gb)
        return dot / jnp.sqrt(na * nb)

    cos = jax.lax.map(cosines, (first_c, second_c)).reshape(-1)[:total]
    within, between = cos[:num_pairs], cos[num_pairs:]
    return {"within": jnp.nanmean(within), "between": jnp.nanmean(between),
            "within_cosines": within, "between_cosines": between}
