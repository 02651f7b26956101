"""Recipes: a task family, its parameters and the backends it runs on, in one YAML file.

```yaml
name: domain-qa
family: domain_instructions
n: 1000
seed: 0
backends:
  generator: {kind: openai, base_url: http://localhost:8000/v1, model: Qwen2.5-7B-Instruct}
  judge: {kind: openai, base_url: https://api.example.com/v1, model: big, api_key_env: API_KEY}
params: {domains: [healthcare, legal]}
temperature: {schedule: linear, start: 0.3, end: 1.1}   # optional, see generate/schedule.py
dedup: {threshold: 0.8}  # optional: drop near-duplicates of kept records while generating
prices: prices.yaml   # optional, relative to the recipe file
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from datamill.errors import validation_error
from datamill.generate.family import Family, get_family
from datamill.generate.pool_dedup import DedupConfig
from datamill.generate.schedule import Schedule, as_schedule
from datamill.llm.config import BackendConfig
from datamill.llm.prices import PriceTable
from datamill.yamlfile import load_model


def _default_backends() -> dict[str, BackendConfig]:
    return {"generator": BackendConfig()}


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    family: str
    n: int = Field(100, ge=1)
    seed: int = 0
    backends: dict[str, BackendConfig] = Field(default_factory=_default_backends)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    temperature: Schedule | None = None
    dedup: DedupConfig | None = None
    prices: Path | None = None
    source: Path | None = Field(None, exclude=True)  # the file it was read from

    @field_validator("temperature", mode="before")
    @classmethod
    def _number_is_constant(cls, value: Any) -> Any:
        return as_schedule(value)

    @model_validator(mode="after")
    def _one_temperature(self) -> Recipe:
        if self.temperature is not None:
            both = sorted({"temperature", "temperatures"} & set(self.params))
            if both:
                raise ValueError(
                    f"the recipe's temperature schedule replaces params.{both[0]}: "
                    "remove one of them"
                )
        return self

    def task(self) -> tuple[Family, BaseModel]:
        """The family and its validated parameters; bad parameters name the recipe field."""
        family = get_family(self.family)
        try:
            return family, family.Params.model_validate(self.params)
        except ValidationError as e:
            raise validation_error(str(self.source or self.name), e, prefix="params") from None

    def price_table(self) -> PriceTable | None:
        if self.prices is None:
            return None
        base = self.source.parent if self.source else Path.cwd()
        return PriceTable.load(base / self.prices)


def load_recipe(path: str | Path) -> Recipe:
    recipe = load_model(path, Recipe, source=Path(path))
    recipe.task()  # fail now on an unknown family or bad parameters, not after a long run
    return recipe
