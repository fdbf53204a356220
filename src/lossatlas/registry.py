"""An experiment registry: names -> experiment modules, given to the runner and the CLI.

The library knows no experiments of its own: whoever owns a set of studies (our
``lossatlas_experiments`` package, or a user's) builds a :class:`Registry` and hands it to
:func:`lossatlas.runner.run_experiment` and :func:`lossatlas.cli.main`.
"""
from __future__ import annotations

import importlib
import types
from typing import Callable, Iterator, Mapping


class Registry:
    """Experiments by name, each with a one-line description and a loader for its module.

    An experiment module defines ``Config``, ``QUICK``, ``run``, ``table``, ``checks`` and
    ``plot`` (see :mod:`lossatlas.runner`). Modules are loaded on first use, so listing the
    names imports nothing heavy.

    Args:
      descriptions: ``{name: one-line description}``.
      load: ``load(name) -> module``.
    """

    def __init__(self, descriptions: Mapping[str, str], load: Callable[[str], types.ModuleType]):
        self.descriptions = dict(descriptions)
        self._load = load

    @classmethod
    def from_package(cls, package: str, descriptions: Mapping[str, str]) -> "Registry":
        """Each name is the module ``<package>.<name>``.

        Args:
          package: an importable package name, e.g. ``"lossatlas_experiments"``.
          descriptions: ``{module name: one-line description}``.

        Returns:
          The registry.
        """
        return cls(descriptions, lambda name: importlib.import_module(f"{package}.{name}"))

    @classmethod
    def from_modules(cls, modules: Mapping[str, types.ModuleType],
                     descriptions: Mapping[str, str] | None = None) -> "Registry":
        """A registry of modules already imported (or built in a test).

        Args:
          modules: ``{name: module}``.
          descriptions: ``{name: description}``; default: the first line of each module's docstring.

        Returns:
          The registry.
        """
        descriptions = dict(descriptions or {})
        for name, mod in modules.items():
            descriptions.setdefault(name, ((mod.__doc__ or "").strip().splitlines() or [""])[0])
        mods = dict(modules)
        return cls(descriptions, mods.__getitem__)

    def with_modules(self, modules: Mapping[str, types.ModuleType]) -> "Registry":
        """A copy with ``modules`` added (or replacing entries of the same name), e.g. a user's
        own study next to ours.

        Args:
          modules: ``{name: module}``.

        Returns:
          The new registry; this one is unchanged.
        """
        extra = Registry.from_modules(modules)
        base = self._load
        return Registry({**self.descriptions, **extra.descriptions},
                        lambda name: modules[name] if name in modules else base(name))

    def get(self, name: str) -> types.ModuleType:
        """The experiment module called ``name``.

        Raises:
          ValueError: unknown name (the message lists the known ones).
        """
        if name not in self.descriptions:
            raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(self.descriptions))}")
        return self._load(name)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self.descriptions)

    def __contains__(self, name: object) -> bool:
        return name in self.descriptions

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.descriptions)

    def __repr__(self) -> str:
        return f"Registry({', '.join(self.names())})"
