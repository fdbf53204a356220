"""TrainConfig: every knob of one training run, validated before tracing."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping

import numpy as np

from lossatlas import optim, validate

# Numeric fields that may become vmap axes in `sweep` (they reach the compiled
# program as traced scalars, not as Python constants).
SWEEPABLE = ("learning_rate", "weight_decay", "momentum", "b1", "b2", "eps", "init_scale",
             "label_smoothing", "clip_norm", "clip_value")

# The optimiser-specific values each of ``optim.OPTIMIZERS`` reads (see
# ``lossatlas.optim.make_optimizer``); learning_rate, weight_decay and clipping apply to all.
OPTIMIZER_FIELDS = {
    "sgd": (),
    "momentum": ("momentum",),
    "nesterov": ("momentum",),
    "adam": ("b1", "b2", "eps"),
    "adamw": ("b1", "b2", "eps"),
    "rmsprop": ("eps",),
    "adagrad": ("eps",),
}
assert set(OPTIMIZER_FIELDS) == set(optim.OPTIMIZERS), "OPTIMIZER_FIELDS must list every optimizer"

#: Values of ``TrainConfig.precision`` (see its docstring).
PRECISIONS = ("float32", "tf32", "bf16")


def _freeze(value):
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()  # numpy scalars -> Python numbers
    return value


def _freeze_model_cfg(model_cfg) -> tuple:
    """``model_cfg`` (a mapping, None, or the frozen tuple of pairs) as a sorted tuple of pairs."""
    if model_cfg is None:
        model_cfg = {}
    elif isinstance(model_cfg, tuple) and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in model_cfg):
        model_cfg = dict(model_cfg)  # already frozen (e.g. from replace())
    elif not isinstance(model_cfg, Mapping):
        raise ValueError(f"TrainConfig.model_cfg must be a mapping of model options (e.g. "
                         f"{{'widths': (32,)}}) or None, got {type(model_cfg).__name__} {model_cfg!r}")
    frozen = _freeze(dict(model_cfg))
    for k, v in frozen:
        try:
            hash(v)
        except TypeError:
            raise ValueError(f"TrainConfig.model_cfg[{k!r}] must be hashable (numbers, strings, tuples), "
                             f"got {type(v).__name__}") from None
    return frozen


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. Frozen and hashable, so compiled programs can be cached on it.

    Attributes:
      model: registry name (see ``lossatlas.models.list_models()``).
      model_cfg: a mapping (or None) of keyword arguments for the model, stored frozen
        as a sorted tuple of pairs (values must be hashable); ``num_outputs`` /
        ``vocab_size`` default to the dataset's ``num_classes`` (or target width for
        regression).
      loss: "cross_entropy" | "mse" | "binary_cross_entropy" | "token_nll", or None
        to pick from the dataset's task.
      optimizer: one of ``lossatlas.optim.OPTIMIZERS``.
      learning_rate, momentum, b1, b2, eps, weight_decay: optimiser values.
      schedule, warmup_steps: learning-rate schedule (see ``lossatlas.optim``).
      clip_norm, clip_value: gradient clipping (None = off).
      label_smoothing: for cross-entropy training loss (evaluation reports the
        unsmoothed loss).
      init_scale: multiplies every initial kernel/embedding (weight-scale studies).
      batch_size: minibatch size; the last partial batch of an epoch is dropped.
      epochs: passes over the training set.
      eval_batch_size: chunk size for the in-program evaluation.
      eval_train: also evaluate the whole training set each epoch.
      chunk_epochs: epochs per compiled call when a progress bar is shown, rounded
        down to a divisor of ``epochs`` (None = about 20 updates per run).
      precision: compute precision of the model's forward (and so backward) pass:
        ``"float32"`` (default; JAX's default matmul precision, unchanged),
        ``"tf32"`` (``jax.default_matmul_precision("tensorfloat32")`` while the
        model is traced: TF32 matmuls on GPUs that have them, no effect on CPU) or
        ``"bf16"`` (the model computes in bfloat16: floating params and inputs are
        cast to bfloat16 for the forward pass, outputs cast back to float32; master
        parameters, optimiser state, losses and metrics stay float32).

    Numeric fields accept numpy scalars and are stored as Python float / int.
    """

    model: str = "mlp"
    model_cfg: Any = ()
    loss: str | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    clip_norm: float | None = None
    clip_value: float | None = None
    label_smoothing: float = 0.0
    init_scale: float = 1.0
    batch_size: int = 100
    epochs: int = 10
    eval_batch_size: int = 1000
    eval_train: bool = True
    chunk_epochs: int | None = None
    precision: str = "float32"

    def __post_init__(self):
        object.__setattr__(self, "model_cfg", _freeze_model_cfg(self.model_cfg))
        self.validate()

    @property
    def model_kwargs(self) -> dict:
        """``model_cfg`` as a plain dict (tuples stay tuples)."""
        return {k: v for k, v in self.model_cfg}

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field(s) {sorted(unknown)}; fields: "
                             f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model_cfg"] = self.model_kwargs
        return d

    def validate(self) -> None:
        """Raise ValueError naming the first field with a wrong type or range (one line,
        :mod:`lossatlas.validate` style); numeric fields are stored as Python float / int."""
        from lossatlas import losses, models  # lazily: they do not import train
        for name, lo, hi in (("learning_rate", 0, None), ("momentum", 0, 1), ("b1", 0, 1), ("b2", 0, 1),
                             ("eps", 0, None), ("weight_decay", 0, None), ("label_smoothing", 0, 1),
                             ("init_scale", 0, None)):
            validate.normalize(self, name, validate.number, lo, hi, hi_open=hi is not None)
        for name in ("clip_norm", "clip_value"):
            validate.normalize(self, name, validate.number, 0, optional=True)
        for name, lo in (("warmup_steps", 0), ("batch_size", 1), ("epochs", 1), ("eval_batch_size", 1)):
            validate.normalize(self, name, validate.integer, lo)
        validate.normalize(self, "chunk_epochs", validate.integer, 1, optional=True)
        validate.one_of("TrainConfig", "model", self.model, models.list_models())
        if self.loss is not None:
            validate.one_of("TrainConfig", "loss", self.loss, (*sorted(losses.LOSSES), None))
        validate.one_of("TrainConfig", "optimizer", self.optimizer, optim.OPTIMIZERS)
        validate.one_of("TrainConfig", "schedule", self.schedule, optim.SCHEDULES)
        validate.one_of("TrainConfig", "precision", self.precision, PRECISIONS)
        if self.schedule.startswith("warmup") and self.warmup_steps < 1:
            validate.fail("TrainConfig", "warmup_steps", self.warmup_steps,
                          f"an integer >= 1 for schedule={self.schedule!r}")
        validate.normalize(self, "eval_train", validate.boolean)


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def type_hints() -> dict:
    return typing.get_type_hints(TrainConfig)
