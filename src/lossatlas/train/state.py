"""The train state carried through the compiled loop."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax


class TrainState(NamedTuple):
    """Everything that changes during training, as one pytree.

    Attributes:
      step: int32 scalar, optimiser steps taken.
      params: the model's trainable parameters.
      opt_state: the optax optimiser state.
      model_state: non-trainable model variables, e.g. ``{"batch_stats": ...}``
        (an empty dict for models without them).
      key: PRNG key of the run; per-epoch shuffles use
        ``fold_in(fold_in(key, 0), epoch)`` and per-step randomness
        ``fold_in(fold_in(key, 1), step)``, so the key itself never changes.
      diverged_at: int32 scalar, the step at which the loss or gradient first
        became NaN/Inf, or -1. From then on the run is frozen: params, optimiser
        and model state keep their last finite values.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    model_state: Any
    key: jax.Array
    diverged_at: jax.Array
