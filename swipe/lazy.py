"""A package's names imported on first use, so that importing the package loads none of its modules."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that gives each name of ``where`` from ``package.<where[name]>``.

    Parameters
    ----------
    package : str
        The package's name (its ``__name__``).
    where : Mapping[str, str]
        Each public name and the submodule that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
