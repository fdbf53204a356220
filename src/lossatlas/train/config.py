"""TrainConfig: every knob of one training run, validated before tracing."""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any, Mapping

import numpy as np

from lossatlas import optim

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
        """Raise ValueError naming the first field with a wrong type or range."""
        _number(self, "learning_rate", lo=0.0)
        _number(self, "momentum", lo=0.0, hi=1.0, hi_open=True)
        _number(self, "b1", lo=0.0, hi=1.0, hi_open=True)
        _number(self, "b2", lo=0.0, hi=1.0, hi_open=True)
        _number(self, "eps", lo=0.0)
        _number(self, "weight_decay", lo=0.0)
        _number(self, "label_smoothing", lo=0.0, hi=1.0, hi_open=True)
        _number(self, "init_scale", lo=0.0)
        _number(self, "clip_norm", lo=0.0, optional=True)
        _number(self, "clip_value", lo=0.0, optional=True)
        _integer(self, "warmup_steps", lo=0)
        _integer(self, "batch_size", lo=1)
        _integer(self, "epochs", lo=1)
        _integer(self, "eval_batch_size", lo=1)
        _integer(self, "chunk_epochs", lo=1, optional=True)
        from lossatlas import losses, models  # lazily: they do not import train
        if self.model not in models.MODELS:
            raise ValueError(f"TrainConfig.model: unknown {self.model!r}; known: {', '.join(models.list_models())}")
        if self.loss is not None and self.loss not in losses.LOSSES:
            raise ValueError(f"TrainConfig.loss: unknown {self.loss!r}; known: {', '.join(sorted(losses.LOSSES))} "
                             f"(or None for the dataset's default)")
        if self.optimizer not in optim.OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer: unknown {self.optimizer!r}; known: {', '.join(optim.OPTIMIZERS)}")
        if self.schedule not in optim.SCHEDULES:
            raise ValueError(f"TrainConfig.schedule: unknown {self.schedule!r}; known: {', '.join(optim.SCHEDULES)}")
        if self.schedule.startswith("warmup") and self.warmup_steps < 1:
            raise ValueError(f"TrainConfig.warmup_steps must be >= 1 for schedule={self.schedule!r}")
        if not isinstance(self.eval_train, bool):
            raise ValueError(f"TrainConfig.eval_train must be a bool, got {self.eval_train!r}")


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _number(cfg, name, lo=None, hi=None, hi_open=False, optional=False):
    """Check a real-valued field (numpy scalars accepted) and store it as a Python float."""
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if _is_bool(value) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"TrainConfig.{name} must be a finite number, got {value!r}")
    value = float(value)
    object.__setattr__(cfg, name, value)
    if lo is not None and value < lo:
        raise ValueError(f"TrainConfig.{name} must be >= {lo}, got {value!r}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        raise ValueError(f"TrainConfig.{name} must be {'<' if hi_open else '<='} {hi}, got {value!r}")


def _integer(cfg, name, lo=None, optional=False):
    """Check an integer field (numpy integers accepted) and store it as a Python int."""
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise ValueError(f"TrainConfig.{name} must be an integer, got {value!r}")
    value = int(value)
    object.__setattr__(cfg, name, value)
    if lo is not None and value < lo:
        raise ValueError(f"TrainConfig.{name} must be >= {lo}, got {value!r}")


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def hint_types(annotation: Any) -> tuple | None:
    """The plain classes a type hint allows (``int | None`` -> ``(int, NoneType)``,
    ``tuple[str, ...]`` -> ``(tuple,)``), or None when it is not that simple (e.g. ``Any``)."""
    if annotation is None or annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        parts = [hint_types(a) for a in typing.get_args(annotation)]
        return None if any(p is None for p in parts) else tuple(t for p in parts for t in p)
    if annotation is type(None):
        return (type(None),)
    if isinstance(origin, type):
        return (origin,)
    return (annotation,) if isinstance(annotation, type) else None


def parse_value(text: str, annotation: Any = None):
    """Parse a command-line value: ints, floats, bools, None, tuples ``(1,2)`` / ``1,2``, strings.

    With a type hint: a tuple field turns a single value into a 1-tuple (``logreg`` ->
    ``("logreg",)``), a float field turns ints and ``nan`` / ``inf`` into floats.
    """
    import ast
    allowed = hint_types(annotation) or ()
    low = text.strip().lower()
    if low in ("true", "false"):
        value = low == "true"
    elif low in ("none", "null"):
        value = None
    else:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            if "," in text:
                value = tuple(parse_value(t) for t in text.split(",") if t.strip())
            else:
                value = text
        if isinstance(value, list):
            value = tuple(value)
    if float in allowed and int not in allowed:
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(value, str):
            try:
                value = float(value)  # "nan", "inf", "-inf"
            except ValueError:
                pass
    if tuple in allowed and value is not None and not isinstance(value, tuple):
        value = (value,)
    return value


def check_type(owner: str, name: str, value: Any, annotation: Any) -> Any:
    """``value`` checked against a field's type hint (int fields need ints, float fields
    take ints or floats and store floats, tuple fields need tuples, str fields strings);
    ValueError naming ``owner.name`` otherwise. Hints that are not plain classes pass."""
    allowed = hint_types(annotation)
    if allowed is None:
        return value
    if value is None:
        if type(None) in allowed:
            return value
    elif _is_bool(value):
        if bool in allowed:
            return bool(value)
    elif isinstance(value, numbers.Integral) and int in allowed:
        return int(value)
    elif isinstance(value, numbers.Real) and float in allowed:
        return float(value)
    elif any(t not in (int, float, bool) and isinstance(value, t) for t in allowed):
        return value
    names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
    raise ValueError(f"{owner}.{name} must be {names}, got {value!r}")


def type_hints() -> dict:
    return typing.get_type_hints(TrainConfig)
