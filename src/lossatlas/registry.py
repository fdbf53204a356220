"""An experiment registry: names -> experiment modules, given to the runner and the CLI.

The library knows no experiments of its own: whoever owns a set of studies (our
``lossatlas_experiments`` package, or a user's) builds a :class:`Registry` and hands it to
:func:`lossatlas.runner.run_experiment` and :func:`lossatlas.cli.main`.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import types
from pathlib import Path
from typing import Callable, Iterator, Mapping


class Registry:
    """Experiments by name, each with a one-line description and a loader for its module.

    An experiment module defines ``Config``, ``QUICK``, ``run``, ``table``, ``checks`` and
    ``plot`` (see :mod:`lossatlas.runner`). Modules are loaded on first use, so listing the
    names imports nothing heavy.

    Args:
      descriptions: ``{name: one-line description}``.
      load: ``load(name) -> module``.
      docstring: ``docstring(name) -> str | None``: the module's docstring without importing
        it, if that can be had more cheaply (see :meth:`doc`); default: load the module.
    """

    def __init__(self, descriptions: Mapping[str, str], load: Callable[[str], types.ModuleType],
                 docstring: Callable[[str], str | None] | None = None):
        self.descriptions = dict(descriptions)
        self._load = load
        self._docstring = docstring

    @classmethod
    def from_package(cls, package: str, descriptions: Mapping[str, str]) -> "Registry":
        """Each name is the module ``<package>.<name>``.

        Args:
          package: an importable package name, e.g. ``"lossatlas_experiments"``.
          descriptions: ``{module name: one-line description}``.

        Returns:
          The registry.
        """
        return cls(descriptions, lambda name: importlib.import_module(f"{package}.{name}"),
                   docstring=lambda name: _source_docstring(f"{package}.{name}"))

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
        base, base_doc = self._load, self.doc
        return Registry({**self.descriptions, **extra.descriptions},
                        lambda name: modules[name] if name in modules else base(name),
                        docstring=lambda name: modules[name].__doc__ if name in modules else base_doc(name))

    def _require(self, name: str) -> None:
        if name not in self.descriptions:
            raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(self.descriptions))}")

    def get(self, name: str) -> types.ModuleType:
        """The experiment module called ``name``.

        Raises:
          ValueError: unknown name (the message lists the known ones).
        """
        self._require(name)
        return self._load(name)

    def doc(self, name: str) -> str:
        """The docstring of experiment ``name``'s module (for its recorded runtime, see
        :func:`lossatlas.describe.quick_runtime`), read from its source file when the registry
        knows where it is (:meth:`from_package`: nothing is imported), else from the loaded module.

        Returns:
          The docstring; ``""`` when the module has none or cannot be read or imported.

        Raises:
          ValueError: unknown name.
        """
        self._require(name)
        if self._docstring is not None:
            try:
                text = self._docstring(name)
            except (OSError, SyntaxError, ImportError, ValueError):
                text = None
            if text is not None:
                return text
        try:
            return self._load(name).__doc__ or ""
        except Exception:  # noqa: BLE001 -- a listing must not fail on one broken module
            return ""

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


def _source_docstring(module_name: str) -> str | None:
    """The docstring of ``module_name`` read from its source file, without importing it
    (its parent package is imported to find it); None when there is no ``.py`` source."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), filename=spec.origin)
    return ast.get_docstring(tree, clean=True) or ""
