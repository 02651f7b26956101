"""Backends as configuration: what a recipe or the command line names, built into engines.

A recipe may name several backends (say, a generator and a judge on different servers);
each gets its own engine with its own concurrency and limits; all may share a cache file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datamill.llm.base import Backend
from datamill.llm.cache import RequestCache
from datamill.llm.engine import Engine
from datamill.llm.limits import RateLimits
from datamill.llm.openai_compat import StructuredMode
from datamill.llm.prices import PriceTable
from datamill.llm.retry import RetryPolicy


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["embedded", "openai"] = "embedded"
    model: str | None = Field(None, description="model name (openai) or GGUF path (embedded)")
    base_url: str | None = None
    api_key_env: str | None = Field(None, description="name of the variable holding the key")
    structured: StructuredMode = "json_schema"
    timeout: float = Field(120.0, gt=0)
    concurrency: int = Field(64, ge=1)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    max_attempts: int = Field(6, ge=1)

    def backend(self) -> Backend:
        if self.kind == "embedded":
            from datamill.llm.embedded import EmbeddedBackend

            return EmbeddedBackend(model_path=self.model)
        from datamill.llm.openai_compat import OpenAICompatBackend

        if not self.base_url or not self.model:
            raise ValueError("an openai backend needs base_url and model")
        return OpenAICompatBackend(
            self.base_url,
            self.model,
            api_key_env=self.api_key_env,
            timeout=self.timeout,
            structured=self.structured,
        )

    def engine(
        self, cache_path: str | Path | None = None, prices: PriceTable | None = None
    ) -> Engine:
        limits = None
        if self.requests_per_minute or self.tokens_per_minute:
            limits = RateLimits(self.requests_per_minute, self.tokens_per_minute)
        return Engine(
            self.backend(),
            concurrency=self.concurrency,
            cache=RequestCache(cache_path) if cache_path else None,
            retry=RetryPolicy(max_attempts=self.max_attempts),
            limits=limits,
            prices=prices,
        )
