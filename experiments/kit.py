"""The experiment kit: what every study takes from the library, in one place.

* **Checks as data**: :func:`check` (``lossatlas.checks.record``) builds a record with the
  claim, the paper's value, ours, the tolerance and the verdict; the runner normalises every
  experiment's list (``lossatlas.checks.normalize``) before writing ``checks.json``, and the
  figure stamp and reports read the same records.
* **Data from the config**: :func:`load` (one dataset object per name and options, so programs,
  which are cached per dataset object, are shared by the sub-studies and experiments of one
  process) and :func:`dataset` (``cfg.dataset``, cut to ``cfg.num_train`` / ``cfg.num_test``
  when the config has them and they are non-zero).
* **Shared field names** (:data:`SHARED_FIELDS`): ``learning_rate``, ``epochs``,
  ``batch_size``, ``seed`` and ``seeds`` mean the same in every Config; a sub-study's own value
  is ``<prefix>_<shared name>`` (``lm_learning_rate``, ``mnist_epochs``, ``noise_batch_size``),
  and ``lossatlas run NAME --set learning_rate=...`` on a study without a single one lists them.

Not an experiment (the registry lists studies by name in ``__init__.py``).
"""
from __future__ import annotations

import functools

from lossatlas import data as data_lib
from lossatlas.checks import record as check

__all__ = ["SHARED_FIELDS", "check", "dataset", "load"]

#: The field names every Config uses in one meaning.
SHARED_FIELDS = {
    "learning_rate": "the optimizer's step size (a sub-study's own: <prefix>_learning_rate)",
    "epochs": "passes over the training set (per task in continual studies)",
    "batch_size": "examples per optimizer step",
    "seed": "the run's root PRNG seed: run(cfg, jax.random.PRNGKey(seed))",
    "seeds": "independent runs (a vmap axis) per setting",
}


@functools.lru_cache(maxsize=None)
def load(name: str, **options):
    """``lossatlas.data.load(name, **options)``, one object per process and arguments."""
    return data_lib.load(name, **options)


def dataset(cfg, name: str | None = None):
    """The dataset a Config names (``cfg.dataset``, else ``name``), cut to the config's
    ``num_train`` / ``num_test`` when it has them and they are non-zero (0: all)."""
    return _subset(getattr(cfg, "dataset", None) or name, getattr(cfg, "num_train", 0) or None,
                   getattr(cfg, "num_test", 0) or None)


@functools.lru_cache(maxsize=None)
def _subset(name: str, num_train: int | None, num_test: int | None):
    ds = load(name)
    return ds.subset(num_train=num_train, num_test=num_test) if (num_train or num_test) else ds
