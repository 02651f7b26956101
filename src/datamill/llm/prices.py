"""What calls cost: a user-supplied price table, per model, per million tokens."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from datamill.yamlfile import load_model


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(ge=0, description="per 1M prompt tokens")
    completion: float = Field(ge=0, description="per 1M completion tokens")


class PriceTable(BaseModel):
    currency: str = "USD"
    models: dict[str, Price] = Field(default_factory=dict)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The cost of a call, or None when the model has no price."""
        price = self.models.get(model)
        if price is None:
            return None
        return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1e6

    @classmethod
    def load(cls, path: str | Path) -> PriceTable:
        """Read ``{currency: USD, models: {name: {prompt: 0.15, completion: 0.6}}}`` YAML."""
        return load_model(path, cls)
