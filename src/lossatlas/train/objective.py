"""Model + loss glue: per-example losses and accuracy for each task."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import losses, models
from lossatlas.data import Dataset

DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse", "language": "token_nll"}


@dataclasses.dataclass(frozen=True)
class Objective:
    """How a model's output is scored for one dataset.

    Attributes:
      loss: loss name (see ``lossatlas.losses.LOSSES``).
      has_accuracy: whether accuracy is defined (not for regression).
      one_hot: for ``mse`` on class labels, the number of classes: the target of an example
        of class ``c`` is the one-hot vector ``e_c`` (the squared-loss classification setting
        of Cohen et al. 2021 and Hui & Belkin 2021); 0 otherwise.
    """

    loss: str
    has_accuracy: bool
    one_hot: int = 0

    def per_example(self, out, y, label_smoothing=0.0):
        """Loss per example [B] (token losses are averaged over the sequence)."""
        if self.loss == "cross_entropy":
            return losses.cross_entropy(out, y, label_smoothing=label_smoothing, reduction="none")
        if self.loss == "mse":
            target = jax.nn.one_hot(y, self.one_hot, dtype=out.dtype) if self.one_hot else y
            return losses.mse(out, target, reduction="none")
        if self.loss == "token_nll":
            return jnp.mean(losses.token_nll(out, y, reduction="none"), axis=-1)
        values = losses.binary_cross_entropy(out.reshape(y.shape), y, reduction="none")
        return values.reshape(values.shape[0], -1).mean(axis=-1)

    def correct(self, out, y):
        """Fraction correct per example [B] (tokens averaged for language)."""
        if self.loss == "binary_cross_entropy":
            return ((out.reshape(y.shape) > 0) == (y > 0.5)).astype(jnp.float32).reshape(y.shape[0], -1).mean(-1)
        hit = (jnp.argmax(out, axis=-1) == y).astype(jnp.float32)
        return hit.reshape(hit.shape[0], -1).mean(axis=-1)


def make_objective(loss: str | None, dataset: Dataset) -> Objective:
    """Pick the loss for a dataset (its task's default when ``loss`` is None)."""
    name = DEFAULT_LOSS[dataset.task] if loss is None else loss
    losses.get_loss(name)  # validates the name
    if dataset.task == "language" and name != "token_nll":
        raise ValueError(f"TrainConfig.loss: language data needs 'token_nll', got {name!r}")
    if dataset.task == "classification" and name not in ("cross_entropy", "binary_cross_entropy", "mse"):
        raise ValueError(f"TrainConfig.loss: classification data needs cross_entropy, binary_cross_entropy or mse "
                         f"(on one-hot targets), got {name!r}")
    if dataset.task == "regression" and name != "mse":
        raise ValueError(f"TrainConfig.loss: regression data needs 'mse', got {name!r}")
    if name == "binary_cross_entropy" and dataset.num_classes != 2:
        raise ValueError(f"TrainConfig.loss: binary_cross_entropy needs 2 classes, dataset has {dataset.num_classes}")
    one_hot = dataset.num_classes if (name == "mse" and dataset.task == "classification") else 0
    return Objective(loss=name, has_accuracy=dataset.task != "regression", one_hot=one_hot)


def check_inputs(name: str, dataset: Dataset) -> None:
    """Raise ValueError if model ``name`` cannot take ``dataset``'s examples (before tracing).

    Uses the registry's :class:`lossatlas.models.InputSpec`: accepted example shapes,
    integer tokens, and per-token output (which language data needs, and only it).
    """
    spec = models.MODELS[name].input_spec
    shape, dtype = dataset.input_shape, np.asarray(dataset.x_train).dtype
    if not spec.accepts_shape(shape):
        raise ValueError(f"TrainConfig.model: {name} accepts examples shaped {spec.describe_shapes()}; "
                         f"dataset {dataset.name!r} has examples shaped {list(shape)}")
    if spec.tokens and not np.issubdtype(dtype, np.integer):
        raise ValueError(f"TrainConfig.model: {name} accepts integer token inputs; "
                         f"dataset {dataset.name!r} has {dtype} inputs")
    if spec.per_token and dataset.task != "language":
        raise ValueError(f"TrainConfig.model: {name} predicts every position and needs task='language' "
                         f"data; dataset {dataset.name!r} has task={dataset.task!r}")
    if dataset.task == "language" and not spec.per_token:
        per_token = [n for n in models.list_models() if models.MODELS[n].input_spec.per_token]
        raise ValueError(f"TrainConfig.model: language data ({dataset.name!r}) needs a per-token model "
                         f"({', '.join(per_token)}); {name} makes one prediction per example")


def build_model(name: str, model_kwargs: dict, dataset: Dataset, objective: Objective):
    """The flax module, with its output width filled in from the dataset."""
    entry = models.MODELS.get(name)
    if entry is None:
        return models.get_model(name, **model_kwargs)  # raises the listing ValueError
    check_inputs(name, dataset)
    fields = {f.name for f in dataclasses.fields(entry.cls)}
    kwargs = dict(model_kwargs)
    if "vocab_size" in fields and "vocab_size" not in kwargs:
        kwargs["vocab_size"] = dataset.num_classes
    if "num_outputs" in fields and "num_outputs" not in kwargs:
        if dataset.task == "regression":
            kwargs["num_outputs"] = int(dataset.y_train.shape[-1]) if dataset.y_train.ndim > 1 else 1
        elif objective.loss == "binary_cross_entropy":
            kwargs["num_outputs"] = 1
        else:
            kwargs["num_outputs"] = dataset.num_classes
    return models.get_model(name, **kwargs)
