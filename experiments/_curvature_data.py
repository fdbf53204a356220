"""The data of forgetting_curvature: per permuted fraction p, a two-task stream whose task B is
task A with a partial permutation of the inputs (:func:`_curvature_geometry.partial_permutations`)."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lossatlas import continual as cl
from lossatlas import keys
from . import _curvature_geometry as cg

from . import kit


def streams(cfg, key):
    """The two-task stream of each fraction (task B = task A with a partial permutation)."""
    ds = kit.load(cfg.dataset)
    base = cl.permuted(ds, 2, key, scenario="domain")
    if cfg.num_train:
        if cfg.num_train > base.num_train:
            raise ValueError(f"Config.num_train must be <= {base.num_train} for {cfg.dataset}, got {cfg.num_train}")
        base = base.subset(num_train=cfg.num_train)
    d = int(np.prod(base.input_shape))
    rng = keys.numpy_rng(jax.random.fold_in(key, 1))
    perms = cg.partial_permutations(d, cfg.fractions, rng)
    streams = []
    for j, p in enumerate(cfg.fractions):
        def two(x):
            a = x[0].reshape(len(x[0]), d)
            return np.stack([a, a[:, perms[j]]]).reshape((2,) + x.shape[1:])
        streams.append(dataclasses.replace(base, name=f"partial_permuted_{cfg.dataset}_p{p:g}",
                                           x_train=two(base.x_train), x_test=two(base.x_test),
                                           y_train=np.stack([base.y_train[0]] * 2), y_test=np.stack([base.y_test[0]] * 2),
                                           meta={**base.meta, "permutations": np.stack([np.arange(d), perms[j]]),
                                                 "fraction": float(p)}))
    return streams, perms
