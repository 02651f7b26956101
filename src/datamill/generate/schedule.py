"""Temperature schedules: the sampling temperature of each item of a run, by plan.

A recipe declares one at its top level and every family follows it; without one, each
family uses its own ``temperature`` parameter. The temperature an item got is in its
record's ``provenance.params`` (with ``temperature_schedule`` naming the schedule).

```yaml
temperature: 0.9                                    # the same for every item
temperature: {schedule: linear, start: 0.2, end: 1.2}   # ramp from the first item to the last
temperature: {schedule: cycle, values: [0.3, 0.7, 1.1]} # item i takes values[i % 3]
temperature:                                        # by an attribute of the item
  schedule: per_attribute
  attribute: domain
  values: {healthcare: 0.3, legal: 0.3}
  default: 0.9                                      # others (default: the family's own)
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from datamill.errors import DatamillError

Temperature = Annotated[float, Field(ge=0, le=2)]


class _Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Constant(_Schedule):
    schedule: Literal["constant"]
    value: Temperature

    def at(self, i: int, total: int, attributes: Mapping[str, str], default: float) -> float:
        return self.value


class Linear(_Schedule):
    """From ``start`` at the first item to ``end`` at the last, in equal steps."""

    schedule: Literal["linear"]
    start: Temperature
    end: Temperature

    def at(self, i: int, total: int, attributes: Mapping[str, str], default: float) -> float:
        share = i / (total - 1) if total > 1 else 0.0
        return round(self.start + (self.end - self.start) * share, 4)


class Cycle(_Schedule):
    schedule: Literal["cycle"]
    values: list[Temperature] = Field(min_length=1)

    def at(self, i: int, total: int, attributes: Mapping[str, str], default: float) -> float:
        return self.values[i % len(self.values)]


class PerAttribute(_Schedule):
    """By the value of one attribute of the item (domain, language, persona, topic…)."""

    schedule: Literal["per_attribute"]
    attribute: str
    values: dict[str, Temperature] = Field(min_length=1)
    default: Temperature | None = Field(None, description="for other values; else the family's")

    def at(self, i: int, total: int, attributes: Mapping[str, str], default: float) -> float:
        if self.attribute not in attributes:
            known = ", ".join(sorted(attributes)) or "none"
            raise DatamillError(
                f"temperature schedule: items of this family have no attribute "
                f"'{self.attribute}' (they have: {known})"
            )
        value = self.values.get(attributes[self.attribute])
        if value is not None:
            return value
        return self.default if self.default is not None else default


Schedule = Annotated[Constant | Linear | Cycle | PerAttribute, Field(discriminator="schedule")]


def as_schedule(value: Any) -> Any:
    """A recipe's ``temperature`` as read: a bare number is a constant schedule."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"schedule": "constant", "value": value}
    return value
