"""Curvature of the loss: Hessian/GGN-vector products, top and bottom eigenpairs, the
gradient's share in those eigenspaces, trace, spectral density and sharpness.

Every function takes ``loss_fn(params) -> scalar``, or ``loss_fn(params, batch)``
(a batch mean) plus ``data`` (arrays with a leading example axis) and
``chunk_size``: the mean over all examples is then accumulated chunk by chunk
inside the compiled program (:mod:`lossatlas.batching`). Params are any
pytree. All functions are pure, with static ints for sizes and iteration counts,
so they jit and vmap over a leading params axis (seeds)::

    eig = jax.jit(jax.vmap(lambda p, k: top_eigenvalues(loss, p, 3, k)))(params_S, keys_S)
"""
from lossatlas.batching import dataset_loss, mean_over_data, num_examples
from lossatlas.linalg import lanczos, power_top_k

from .density import broadened_density, lanczos_quadrature, spectral_density
from .eigen import EigenspaceOverlap, bottom_eigenvalues, eigenspace_overlap, top_eigenvalues
from .hvp import flat_operator, ggn_vp, hvp
from .sharpness import sharpness
from .trace import trace

__all__ = [
    "EigenspaceOverlap", "bottom_eigenvalues", "broadened_density", "dataset_loss", "eigenspace_overlap", "flat_operator", "ggn_vp",
    "hvp", "lanczos", "lanczos_quadrature", "mean_over_data", "num_examples", "power_top_k", "sharpness", "spectral_density",
    "top_eigenvalues", "trace",
]
