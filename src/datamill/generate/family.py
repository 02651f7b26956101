"""What a task family is, and the registry of built-in families.

A family turns ``n`` and its parameters into records: it plans what to generate (domain,
persona, topic, seed task…), sends prompts through the engines it is given, parses the
answers and yields a :class:`Record` per success or the :class:`LLMError` that made an
item fail. Failures are data: the runner counts them by cause.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from datamill.errors import DatamillError, LLMError
from datamill.llm.engine import Engine
from datamill.records import Record


@dataclass
class Context:
    """What a family may use: engines by role, the recipe's name and its seed."""

    engines: dict[str, Engine]
    recipe: str
    seed: int = 0

    def engine(self, role: str = "generator") -> Engine:
        try:
            return self.engines[role]
        except KeyError:
            known = ", ".join(sorted(self.engines)) or "none"
            raise DatamillError(
                f"recipe '{self.recipe}' names no backend for role '{role}' (it has: {known})"
            ) from None


class Family(Protocol):
    name: str
    Params: type[BaseModel]

    def generate(self, ctx: Context, params: Any, n: int) -> AsyncIterator[Record | LLMError]: ...


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    _FAMILIES[family.name] = family
    return family


def _load_builtins() -> None:
    from datamill.generate import families as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def get_family(name: str) -> Family:
    _load_builtins()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise DatamillError(f"no task family '{name}'; known: {', '.join(families())}") from None


def families() -> list[str]:
    _load_builtins()
    return sorted(_FAMILIES)
