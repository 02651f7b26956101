"""Dedup against the pool while generating: a record whose text is a near-duplicate of one
already kept, in this run or in the output dataset's latest version, is dropped.

It is the ``near_dup`` check (MinHash LSH over word n-grams, candidates verified on
shingle sketches) run one record at a time, hashing in process: generation hands over
records one by one, far slower than hashing them.

```yaml
dedup: {threshold: 0.8, text: conversation, ngram: 5}   # or just: dedup: true
```
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from datamill.checks.base import Part
from datamill.checks.near_dup import NearDup
from datamill.records import Record
from datamill.store import Dataset

EXAMPLES = 10  # dropped records named in the run's stats


class DedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    near: bool = Field(True, description="near-duplicates by MinHash LSH (the only kind)")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard of word n-grams that drops")
    # Not "on", as the near_dup check calls it: YAML reads a bare ``on`` as true.
    text: Part = Field("conversation", description="prompt, response or conversation")
    ngram: int = Field(5, ge=1, le=16)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {} if data is True else data

    @model_validator(mode="after")
    def _near_only(self) -> DedupConfig:
        if not self.near:
            raise ValueError("only near-duplicate dedup is built in; leave 'near' true")
        return self


class PoolDedup:
    """Says whether to keep each generated record, and counts what it dropped."""

    def __init__(self, config: DedupConfig, dataset: Dataset) -> None:
        pool = str(dataset.path) if dataset.versions else None
        self._check = NearDup(
            on=config.text,
            threshold=config.threshold,
            ngram=config.ngram,
            reference=pool,
            workers=1,
        )
        self.dropped = 0
        self.examples: list[JsonValue] = []

    async def keep(self, record: Record) -> bool:
        [result] = await self._check.check_batch([record])
        if result.passed is not False:
            return True
        self.dropped += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"id": record.id, **result.details})
        return False

    def stats(self) -> dict[str, JsonValue]:
        return {"dropped": self.dropped, "examples": self.examples}

    async def aclose(self) -> None:
        await self._check.aclose()
