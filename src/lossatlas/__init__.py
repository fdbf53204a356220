"""lossatlas: a JAX toolkit for studying how neural networks learn from their mistakes.

The loss turns an error into a number, backpropagation traces which parameters
caused it, the optimiser corrects them; lossatlas measures each link and the ways
the loop fails. A whole experiment is one pure function of a PRNG key and a
config, compiled once: ``make_train(config, dataset)(key)``; seeds and
hyperparameter grids are vmap axes: ``sweep(config, dataset, seeds=N, grid=...)``.
"""
import os as _os

# XLA's C++ log prints an ERROR line for every executable loaded from JAX's persistent
# compilation cache on some CPUs ("target machine feature +prefer-no-gather is not
# supported": a tuning hint, not an instruction set). The level is read when jaxlib loads,
# so it is set here, before jax is imported; a level the user chose wins.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lossatlas import continual, curvature, data, grads, landscape, losses, memory, models, optim, saddles, train
from lossatlas import batching, keys, linalg, validate  # the ground floor every layer uses
from lossatlas.data import Dataset, load
from lossatlas.losses import binary_cross_entropy, cross_entropy, mse, token_nll
from lossatlas.models import get_model
from lossatlas.optim import make_optimizer, make_schedule
from lossatlas.train import TrainConfig, TrainState, make_train, sweep

__version__ = "0.1.0"

__all__ = [
    "Dataset", "TrainConfig", "TrainState", "binary_cross_entropy", "continual", "cross_entropy", "curvature", "data", "get_model", "grads", "landscape",
    "load", "losses", "make_optimizer", "make_schedule", "make_train", "memory", "models", "mse", "optim", "saddles", "sweep",
    "token_nll", "train",
]
__all__ += ["batching", "keys", "linalg", "validate"]


def __getattr__(name):  # heavy or optional modules load on first use
    if name in ("results", "plotting", "runner", "cli", "registry", "overrides", "reproduce"):
        import importlib
        return importlib.import_module(f"lossatlas.{name}")
    raise AttributeError(f"module 'lossatlas' has no attribute {name!r}")
