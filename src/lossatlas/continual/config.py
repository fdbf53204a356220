"""StreamConfig: a :class:`lossatlas.train.TrainConfig` plus the fields of a task stream.

The training fields (model, optimizer, learning rate, schedule, clipping, batch size, epochs
per task, ...) are ``TrainConfig``'s and are checked once, by ``TrainConfig.validate``; the
stream adds how often to evaluate inside the scan, whether the optimiser state is reset at
each task and whether the parameters after every task are returned.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from lossatlas import validate
from lossatlas.train.config import TrainConfig

__all__ = ["StreamConfig"]


@dataclasses.dataclass(frozen=True)
class StreamConfig(TrainConfig):
    """How each task of a stream is trained: a ``TrainConfig`` with stream defaults and fields.

    Every ``TrainConfig`` field means what it means there (``epochs`` is per task; the
    optimiser's ``total_steps`` for a schedule are one task's steps); the defaults differ
    (SGD, learning rate 0.1, batch 32, one epoch, an MLP with one hidden layer of 100).
    ``loss`` must be None or ``"cross_entropy"`` (the stream's masked cross-entropy);
    ``eval_batch_size``, ``eval_train`` and ``chunk_epochs`` are not used. Models with batch
    statistics (``norm="batch"``) are refused; ``num_outputs`` comes from the stream.

    Stream fields:
      eval_every: evaluate every task every this many steps inside the scan (0: only at the
        end of each task). Must divide the steps per task.
      reset_optimizer: fresh optimiser state at the start of every task (Avalanche's default).
      keep_params: also return the parameters at the end of every task (``params``, a pytree
        with leading ``[..., T]`` axes; e.g. for curvature at each task's solution).
    """
    model_cfg: Any = (("widths", (100,)),)
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    batch_size: int = 32
    epochs: int = 1
    eval_every: int = 0
    reset_optimizer: bool = True
    keep_params: bool = False

    def validate(self) -> None:
        """``TrainConfig.validate`` and the stream fields; one ``ValueError`` line naming the field."""
        super().validate()
        where = "StreamConfig"
        object.__setattr__(self, "eval_every", validate.integer(where, "eval_every", self.eval_every, 0))
        for name in ("reset_optimizer", "keep_params"):
            object.__setattr__(self, name, validate.boolean(where, name, getattr(self, name)))
        validate.one_of(where, "loss", self.loss, (None, "cross_entropy"))
        kw = self.model_kwargs
        if kw.get("norm") == "batch":
            validate.fail(where, "model_cfg['norm']", "batch", "'layer' or 'none' (stream programs keep no "
                          "batch statistics)")
        if "num_outputs" in kw:
            validate.fail(where, "model_cfg['num_outputs']", kw["num_outputs"], "absent (it is set from the stream)")

    def train_config(self) -> TrainConfig:
        """The plain ``TrainConfig`` of these training fields (what ``make_train`` would take)."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in names})
