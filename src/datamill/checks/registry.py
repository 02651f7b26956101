"""Checks by name, with options, as the command line and recipes name them.

Every module of the ``datamill.checks`` package may register checks with ``@register``;
they are found on first use.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, TypeVar

from datamill.errors import DatamillError

C = TypeVar("C", bound=type)
_CHECKS: dict[str, type] = {}


def register(cls: C) -> C:
    _CHECKS[cls.name] = cls  # type: ignore[attr-defined]
    return cls


def _discover() -> None:
    import datamill.checks as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def available() -> dict[str, type]:
    _discover()
    return dict(sorted(_CHECKS.items()))


def options_of(cls: type) -> dict[str, Any]:
    """A check's options and their defaults, from its constructor."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in params if p.name != "self"}


def make_check(name: str, options: dict[str, Any] | None = None) -> Any:
    checks = available()
    if name not in checks:
        raise DatamillError(f"no check '{name}'; known: {', '.join(checks)}")
    cls, options = checks[name], options or {}
    known = options_of(cls)
    unknown = sorted(set(options) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        raise DatamillError(f"check '{name}' has no option {unknown[0]!r}; options: {listed}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as e:
        raise DatamillError(f"check '{name}': {e}") from None
