"""What a task family is, and the registry of built-in families.

A family turns ``n`` and its parameters into records: it plans what to generate (domain,
persona, topic, seed task…), sends prompts through the engines it is given, parses the
answers and yields a :class:`Record` per success or the :class:`LLMError` that made an
item fail. Failures are data: the runner counts them by cause.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from datamill.errors import DatamillError, LLMError
from datamill.generate.schedule import Schedule
from datamill.generate.template import PromptTemplate
from datamill.llm.engine import Engine, Outcome, usage_of
from datamill.records import Provenance, Record


@dataclass
class Context:
    """What a family may use: engines by role, the recipe's name, its seed and its
    temperature schedule."""

    engines: dict[str, Engine]
    recipe: str
    seed: int = 0
    schedule: Schedule | None = None

    def temperature(
        self, i: int, total: int, default: float, attributes: Mapping[str, str | None]
    ) -> float:
        """The temperature of item ``i`` of ``total`` with these attributes: by the recipe's
        schedule, else the family's ``default``. Attributes that are None are left out."""
        if self.schedule is None:
            return default
        known = {k: v for k, v in attributes.items() if v is not None}
        return self.schedule.at(i, total, known, default)

    def provenance(
        self,
        template: PromptTemplate,
        outcomes: Sequence[Outcome],
        parents: Sequence[str] = (),
    ) -> Provenance:
        """Provenance of a record made by ``outcomes`` (the last one made its final text)."""
        last = outcomes[-1]
        assert last.completion is not None, "provenance of a failed call"
        params = last.request.sampling()
        if self.schedule is not None:
            params["temperature_schedule"] = self.schedule.schedule
        return Provenance(
            source="synthetic",
            model=last.completion.model,
            backend=last.completion.backend,
            template=template.name,
            template_version=template.version,
            params=params,
            seed=last.request.seed,
            parents=list(parents),
            recipe=self.recipe,
            usage=usage_of(*outcomes),
        )

    def engine(self, role: str = "generator") -> Engine:
        try:
            return self.engines[role]
        except KeyError:
            known = ", ".join(sorted(self.engines)) or "none"
            raise DatamillError(
                f"recipe '{self.recipe}' names no backend for role '{role}' (it has: {known})"
            ) from None


T = TypeVar("T")
S = TypeVar("S")


def scheduled(
    ctx: Context,
    slots: Sequence[S],
    default: float,
    attributes: Callable[[S], Mapping[str, str | None]],
) -> list[S]:
    """The planned slots (dataclasses with a ``temperature`` field), each with its
    temperature by the recipe's schedule, or ``default`` without one."""
    total = len(slots)
    return [
        replace(slot, temperature=ctx.temperature(i, total, default, attributes(slot)))
        for i, slot in enumerate(slots)
    ]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size``: a family sends a chunk's calls at once, then the next."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
