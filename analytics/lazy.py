"""Lazy package exports (PEP 562), shared by ``analytics``, ``signals`` and ``integrations``.

A package lists ``submodule -> public names`` and gets a module ``__getattr__`` that imports a
submodule the first time one of its names is used, so ``from analytics import RegimeDeskError``
loads no scipy and ``regimedesk --help`` no numerical library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, sources: Mapping[str, Sequence[str]], namespace: MutableMapping[str, Any],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names load on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (for the error message).
    sources : mapping of str to sequence of str
        Submodule -> the public names it defines.
    namespace : mutable mapping
        The package's ``globals()``: a loaded name is stored there, so later look-ups do not
        come back to ``__getattr__``; ``__dir__`` lists it with ``__all__``.

    Returns
    -------
    (getattr, dir)
        To assign as the package's ``__getattr__`` and ``__dir__``.
    """
    module_of = {name: module for module, names in sources.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *namespace.get("__all__", ())})

    return __getattr__, __dir__
